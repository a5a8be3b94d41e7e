"""Cross-modal contrastive losses: in-batch InfoNCE, task-aware dynamic weighting, distribution alignment.

Logits are cosine similarities times a (learnable) scale. Positives are the
pairs with equal labels: distinct instance labels give CLIP's InfoNCE,
identity labels let every image of a person match every description of them.
"""

import math

import jax
import jax.numpy as jnp

from jreid.ops import l2_normalize, masked_mean

MAX_LOG_SCALE = math.log(100.0)  # CLIP's cap on the learned logit scale.
INIT_LOG_SCALE = math.log(1 / 0.07)  # CLIP's initial logit scale: temperature 0.07.


def logit_scale(log_scale: jax.Array) -> jax.Array:
  """exp of a learned log logit scale, capped at 100 as CLIP caps it."""
  return jnp.exp(jnp.minimum(log_scale, MAX_LOG_SCALE))


def similarity_logits(queries: jax.Array, keys: jax.Array, scale: jax.Array | float) -> jax.Array:
  """scale * cos(queries_i, keys_j): [N, M] in fp32."""
  return scale * l2_normalize(queries) @ l2_normalize(keys).T


def positive_targets(labels: jax.Array, valid: jax.Array | None = None) -> jax.Array:
  """[N, N] target distributions: row i is uniform over the valid j with labels[j] == labels[i] (a row
  without any, an invalid item's, is 0)."""
  same = labels[:, None] == labels[None, :]
  if valid is not None:
    same = same & valid[:, None] & valid[None, :]
  same = same.astype(jnp.float32)
  return same / jnp.maximum(same.sum(axis=1, keepdims=True), 1.0)


def symmetric_info_nce(a: jax.Array, b: jax.Array, scale: jax.Array | float, labels: jax.Array,
                       valid: jax.Array | None = None) -> jax.Array:
  """Per-pair symmetric InfoNCE [N]: (CE of a_i over b + CE of b_i over a) / 2.

  Each row's cross-entropy is against `positive_targets(labels)`; with
  distinct labels it is -log softmax at the paired item (CLIP's loss).
  `valid` [N] bool (default: all) leaves the other pairs out: they are no
  row's positive or negative, and their own loss is 0.
  """
  logits = similarity_logits(a, b, scale)
  if valid is not None:  # A masked logit adds exp(-1e30) = 0 to the softmax; its target is 0.
    logits = jnp.where(valid[:, None] & valid[None, :], logits, -1e30)
  targets = positive_targets(labels, valid)
  a_to_b = -jnp.sum(targets * jax.nn.log_softmax(logits, axis=1), axis=1)
  b_to_a = -jnp.sum(targets * jax.nn.log_softmax(logits.T, axis=1), axis=1)
  return (a_to_b + b_to_a) / 2


def image_text_contrastive(images: jax.Array, texts: jax.Array, log_scale: jax.Array,
                           valid: jax.Array | None = None) -> jax.Array:
  """CLIP's loss: the mean symmetric InfoNCE of N image-caption pairs, pair i the only positive of row i.

  `log_scale` is the learned log logit scale (capped by `logit_scale`);
  `valid` [N] bool (default: all) names the pairs that take part (images with
  a caption); 0 when none does. Under jit on sharded inputs the N is the
  global batch.
  """
  valid = jnp.ones(images.shape[0], bool) if valid is None else valid
  per_pair = symmetric_info_nce(images, texts, logit_scale(log_scale), jnp.arange(images.shape[0]), valid)
  return masked_mean(per_pair, valid)


def task_aware_weights(loss_a: jax.Array, loss_b: jax.Array, eps: float = 1e-9) -> tuple[jax.Array, jax.Array]:
  """UNIReID's per-sample weights of two tasks from their losses.

  With confidences p = exp(-loss): w_a = (p_b + eps) 2 p_a p_b / (p_a + p_b + eps)
  and w_b = (p_a + eps) 2 p_a p_b / (p_a + p_b + eps).
  """
  p_a, p_b = jnp.exp(-loss_a), jnp.exp(-loss_b)
  agreement = 2 * p_a * p_b / (p_a + p_b + eps)
  return (p_b + eps) * agreement, (p_a + eps) * agreement


def dynamic_task_loss(loss_a: jax.Array, loss_b: jax.Array, alpha: float = 1.0, gamma: float = 3.5,
                      stop_gradient: bool = False) -> jax.Array:
  """mean(alpha (1 + w_a)^gamma loss_a) + mean(alpha (1 + w_b)^gamma loss_b) over per-sample losses.

  As released by the UNIReID authors the gradient also flows through the
  weights; `stop_gradient` treats them as constants.
  """
  w_a, w_b = task_aware_weights(loss_a, loss_b)
  if stop_gradient:
    w_a, w_b = jax.lax.stop_gradient(w_a), jax.lax.stop_gradient(w_b)
  return jnp.mean(alpha * (1 + w_a) ** gamma * loss_a) + jnp.mean(alpha * (1 + w_b) ** gamma * loss_b)


def distribution_alignment(student_logits: jax.Array, teacher_logits: jax.Array) -> jax.Array:
  """mean_i -sum_j softmax(teacher_i)_j log softmax(student_i)_j, the teacher held constant.

  The cross-entropy form of KL(teacher || student): the two differ by the
  teacher's entropy, which has no gradient.
  """
  teacher = jax.nn.softmax(jax.lax.stop_gradient(teacher_logits).astype(jnp.float32), axis=1)
  student = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=1)
  return -jnp.mean(jnp.sum(teacher * student, axis=1))


def hard_negatives(rng: jax.Array, similarity: jax.Array, allowed: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per row, a column drawn from softmax(similarity) over the allowed columns (no gradient); and whether the
  row has an allowed column."""
  index = jax.random.categorical(rng, jnp.where(allowed, jax.lax.stop_gradient(similarity), -jnp.inf))
  return index, jnp.any(allowed, axis=1)
