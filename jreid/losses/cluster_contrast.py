"""Cluster contrast loss: each feature against the memory of cluster centroids."""

import jax
import jax.numpy as jnp


def cluster_contrast_loss(features: jax.Array, labels: jax.Array, memory: jax.Array, temperature: float = 0.05,
                          valid: jax.Array | None = None) -> jax.Array:
  """Mean over kept rows of -log softmax(f . c_k / temperature)[label].

  features [B, D] and memory [K, D] L2-normalised; rows with label -1 or
  valid False are left out (0.0 when none is kept). The memory is a
  constant: no gradient reaches it.
  """
  labels = jnp.asarray(labels, jnp.int32)
  logits = features.astype(jnp.float32) @ jax.lax.stop_gradient(memory).astype(jnp.float32).T / temperature
  log_probs = jax.nn.log_softmax(logits, axis=1)
  picked = jnp.take_along_axis(log_probs, jnp.maximum(labels, 0)[:, None], axis=1)[:, 0]
  keep = labels >= 0
  if valid is not None:
    keep &= valid
  return -jnp.sum(jnp.where(keep, picked, 0.0)) / jnp.maximum(jnp.sum(keep), 1)
