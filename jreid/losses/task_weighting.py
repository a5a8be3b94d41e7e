"""Task-aware dynamic weighting for N tasks, generalised from UNIReID's two-task form.

UNIReID weighs two tasks a, b by their prediction confidences p = exp(-loss):
w_a = (p_b + eps) H(p_a, p_b), with H the harmonic mean; the lagging task
gets the larger weight, and all weights grow as every task becomes
confident. For N tasks, w_t = (mean of the other tasks' p + eps) H(p_1..p_N),
which is UNIReID's form for N = 2. Tasks not seen yet take no part.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def task_weights(confidence: jax.Array, seen: jax.Array, eps: float = 1e-9) -> jax.Array:
  """w [N] from per-task confidences [N] in (0, 1]; tasks with seen False get 0 and are left out of the others'."""
  seen = seen.astype(bool)
  p = jnp.where(seen, confidence, 0.0)
  count = jnp.sum(seen)
  harmonic = count / jnp.maximum(jnp.sum(jnp.where(seen, 1.0 / (p + eps), 0.0)), eps)
  others = jnp.maximum(count - seen.astype(jnp.float32), 1.0)
  mean_others = (jnp.sum(p) - p) / others
  return jnp.where(seen, (mean_others + eps) * harmonic, 0.0)


def update_confidence(confidence: jax.Array, seen: jax.Array, task: jax.Array, row_loss: jax.Array,
                      valid: jax.Array, momentum: float) -> tuple[jax.Array, jax.Array]:
  """(confidence, seen) [N] after one batch: each present task's exp(-mean row loss), averaged with momentum.

  task [B] is each row's task index, row_loss [B] its loss (held constant),
  valid [B] the rows that count. A task's first batch sets its confidence.
  """
  onehot = (task[:, None] == jnp.arange(confidence.shape[0])[None, :]) & valid[:, None].astype(bool)
  counts = jnp.sum(onehot, axis=0)
  mean = jnp.sum(jnp.where(onehot, jax.lax.stop_gradient(row_loss)[:, None], 0.0), axis=0) / jnp.maximum(counts, 1)
  present, seen = counts > 0, seen.astype(bool)
  current = jnp.exp(-mean)
  blended = jnp.where(seen, momentum * confidence + (1 - momentum) * current, current)
  return jnp.where(present, blended, confidence), seen | present
