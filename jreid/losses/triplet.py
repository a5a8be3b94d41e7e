"""Triplet losses with batch-hard mining over the (global) batch."""

import jax
import jax.numpy as jnp

from jreid.ops import masked_mean


def pairwise_squared_distance(x: jax.Array, y: jax.Array) -> jax.Array:
  """Squared Euclidean distances [N, M] between rows of x [N, D] and y [M, D]."""
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  d = jnp.sum(x * x, -1)[:, None] + jnp.sum(y * y, -1)[None, :] - 2.0 * x @ y.T
  return jnp.maximum(d, 0.0)


def pairwise_distance(x: jax.Array, y: jax.Array) -> jax.Array:
  """Euclidean distances, with a gradient that stays finite at zero distance."""
  return jnp.sqrt(pairwise_squared_distance(x, y) + 1e-12)


def batch_hard_triplet(features: jax.Array, labels: jax.Array, margin: float | None = 0.3) -> jax.Array:
  """Batch-hard triplet loss (Hermans et al. 2017).

  For every anchor: the farthest positive and the nearest negative in the batch.
  margin=None uses the soft margin log(1 + exp(d_ap - d_an)). Anchors without a
  positive or a negative in the batch are left out of the mean.
  """
  dist = pairwise_distance(features, features)
  same = labels[:, None] == labels[None, :]
  not_self = ~jnp.eye(labels.shape[0], dtype=bool)
  positive = same & not_self
  negative = ~same
  hardest_positive = jnp.max(jnp.where(positive, dist, -jnp.inf), axis=1)
  hardest_negative = jnp.min(jnp.where(negative, dist, jnp.inf), axis=1)
  valid = jnp.any(positive, axis=1) & jnp.any(negative, axis=1)
  gap = jnp.where(valid, hardest_positive - hardest_negative, 0.0)
  if margin is None:
    per_anchor = jax.nn.softplus(gap)
  else:
    per_anchor = jax.nn.relu(gap + margin)
  return masked_mean(per_anchor, valid)
