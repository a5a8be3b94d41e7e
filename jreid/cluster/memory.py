"""Cluster memory (cluster-contrast): one L2-normalised centroid per pseudo identity.

Functional: the memory is a [K, D] array the caller keeps in its state,
re-initialised from the cluster centroids after each clustering and moved
towards the batch features after each step. Labels -1 (outliers) never
touch it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jreid.ops import l2_normalize


def init_memory(features: jax.Array, labels: jax.Array, num_clusters: int | None = None) -> jax.Array:
  """[K, D] float32: the normalised mean of each cluster's members (zeros for an empty cluster).

  K is num_clusters, else max(labels) + 1 (labels must then be concrete).
  """
  features = jnp.asarray(features, jnp.float32)
  labels = jnp.asarray(labels, jnp.int32)
  if num_clusters is None:
    num_clusters = int(jnp.max(labels)) + 1
  segment = jnp.where(labels >= 0, labels, num_clusters)
  sums = jax.ops.segment_sum(features, segment, num_segments=num_clusters + 1)[:num_clusters]
  return l2_normalize(sums)


def momentum_update(memory: jax.Array, features: jax.Array, labels: jax.Array, momentum: float = 0.1) -> jax.Array:
  """The memory after cluster-contrast's per-sample update, in batch order.

  For each sample (x, y), y >= 0, in order: c_y <- normalise(momentum c_y +
  (1 - momentum) x). Samples of different clusters commute, so the update
  runs in rounds, round r applying every cluster's r-th sample at once: as
  many rounds as the largest count of one cluster in the batch, and exactly
  the sequential result. No gradient flows through it.
  """
  features = lax.stop_gradient(jnp.asarray(features, memory.dtype))
  labels = jnp.asarray(labels, jnp.int32)
  num_clusters = memory.shape[0]
  valid = labels >= 0
  order = jnp.arange(labels.shape[0])
  earlier = (labels[:, None] == labels[None, :]) & (order[None, :] < order[:, None])
  occurrence = jnp.sum(earlier, axis=1)  # how many earlier samples share the cluster
  rounds = jnp.max(jnp.where(valid, occurrence + 1, 0))

  def apply(state):
    step, memory = state
    now = valid & (occurrence == step)
    target = jnp.where(now, labels, num_clusters)  # out of range: dropped
    moved = l2_normalize(momentum * memory[jnp.minimum(target, num_clusters - 1)] + (1.0 - momentum) * features)
    return step + 1, memory.at[target].set(moved, mode="drop")

  return lax.while_loop(lambda state: state[0] < rounds, apply, (0, lax.stop_gradient(memory)))[1]
