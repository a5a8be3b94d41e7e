"""DINO self-distillation without labels: the multi-crop loss, the teacher's centre, EMA and momentum schedule.

A student sees every crop of an image (the global ones first), an EMA teacher
only the global ones; both end in logits over K prototypes. The teacher's
logits are centred and sharpened; the student learns to predict them from
every other view (METHODS.md, 'Pretraining the towers').
"""

import jax
import jax.numpy as jnp


def dino_loss(student_logits: jax.Array, teacher_logits: jax.Array, centre: jax.Array, teacher_temperature: float,
              student_temperature: float = 0.1) -> jax.Array:
  """Mean over view pairs u != v and images of -softmax((t_u - c) / tau_t) . log softmax(s_v / tau_s).

  Args:
    student_logits: [V, B, K] over all V crops; crop v < G is global view v.
    teacher_logits: [G, B, K] over the G global crops (no gradient flows into them).
    centre: [K], the running mean of the teacher's logits.
  """
  num_global = teacher_logits.shape[0]
  teacher = jax.nn.softmax((jax.lax.stop_gradient(teacher_logits).astype(jnp.float32) - centre)
                           / teacher_temperature, axis=-1)
  student = jax.nn.log_softmax(student_logits.astype(jnp.float32) / student_temperature, axis=-1)
  cross = -jnp.einsum("ubk,vbk->uv", teacher, student) / student_logits.shape[1]  # [G, V], mean over images
  other_view = jnp.arange(num_global)[:, None] != jnp.arange(student_logits.shape[0])[None, :]
  return jnp.sum(jnp.where(other_view, cross, 0.0)) / jnp.sum(other_view)


def update_centre(centre: jax.Array, teacher_logits: jax.Array, momentum: float = 0.9) -> jax.Array:
  """momentum c + (1 - momentum) mean of the teacher's logits over views and the (global) batch."""
  batch_mean = jnp.mean(jax.lax.stop_gradient(teacher_logits).astype(jnp.float32).reshape(-1, centre.shape[-1]),
                        axis=0)
  return momentum * centre + (1 - momentum) * batch_mean


def teacher_momentum(step: jax.Array | int, num_steps: int, base: float = 0.996, final: float = 1.0) -> jax.Array:
  """The teacher's EMA momentum at `step`: base at 0, rising on a half cosine to final at num_steps."""
  progress = jnp.clip(jnp.asarray(step, jnp.float32) / num_steps, 0.0, 1.0)
  return final - (final - base) * (jnp.cos(jnp.pi * progress) + 1) / 2


def teacher_temperature(step: jax.Array | int, warmup_steps: int, start: float = 0.04,
                        end: float = 0.07) -> jax.Array:
  """DINO's teacher temperature at `step`: linear from start to end over warmup_steps, then end."""
  progress = jnp.clip(jnp.asarray(step, jnp.float32) / max(warmup_steps, 1), 0.0, 1.0)
  return start + (end - start) * progress


def ema_update(teacher, student, momentum: jax.Array | float):
  """teacher <- momentum teacher + (1 - momentum) student, leaf by leaf, in each teacher leaf's dtype."""
  return jax.tree.map(lambda t, s: (momentum * t + (1 - momentum) * s).astype(t.dtype), teacher,
                      jax.lax.stop_gradient(student))
