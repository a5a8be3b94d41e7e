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


def row_distance(features: jax.Array, index: jax.Array, squared: bool = False) -> jax.Array:
  """Distances between each row i of features [N, D] and rows index[i] ([N] or [N, K]), from the differences.

  Mining reads the pairwise matrix, whose expansion |x|^2 + |y|^2 - 2xy cancels for
  close features: there sqrt's gradient 1 / (2 sqrt(d)) meets a d that is
  rounding noise, and one near-duplicate pair's gradient norm grows to thousands
  (a collapsed start never recovers). The mined pairs' distances are taken
  again from x - y, whose gradient stays bounded.
  """
  x = features.astype(jnp.float32)
  other = x[index]
  anchor = x[:, None, :] if index.ndim == 2 else x
  d = jnp.sum(jnp.square(anchor - other), -1)
  return d if squared else jnp.sqrt(d + 1e-12)


def batch_hard_triplet(features: jax.Array, labels: jax.Array, margin: float | None = 0.3) -> jax.Array:
  """Batch-hard triplet loss (Hermans et al. 2017).

  For every anchor: the farthest positive and the nearest negative in the batch.
  margin=None uses the soft margin log(1 + exp(d_ap - d_an)). Anchors without a
  positive or a negative in the batch are left out of the mean.
  """
  dist = jax.lax.stop_gradient(pairwise_distance(features, features))  # mining only: see row_distance
  same = labels[:, None] == labels[None, :]
  not_self = ~jnp.eye(labels.shape[0], dtype=bool)
  positive = same & not_self
  negative = ~same
  hardest_positive = row_distance(features, jnp.argmax(jnp.where(positive, dist, -jnp.inf), axis=1))
  hardest_negative = row_distance(features, jnp.argmin(jnp.where(negative, dist, jnp.inf), axis=1))
  valid = jnp.any(positive, axis=1) & jnp.any(negative, axis=1)
  gap = jnp.where(valid, hardest_positive - hardest_negative, 0.0)
  if margin is None:
    per_anchor = jax.nn.softplus(gap)
  else:
    per_anchor = jax.nn.relu(gap + margin)
  return masked_mean(per_anchor, valid)
