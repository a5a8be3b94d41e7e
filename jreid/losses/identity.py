"""Identity classification loss."""

import jax
import jax.numpy as jnp


def cross_entropy_per_row(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Softmax cross-entropy [B] of each row, with optional label smoothing (computed in fp32)."""
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
  return -jnp.sum(targets * log_probs, axis=-1)


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Mean softmax cross-entropy with optional label smoothing (computed in fp32)."""
  return jnp.mean(cross_entropy_per_row(logits, labels, label_smoothing))
