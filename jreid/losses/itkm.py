"""The loss terms of ITKM (METHODS.md, ITKM): contrast against masked prototype sets, and prompt learning.

Features, prototypes and text features are L2-normalised rows; `allowed`
masks [B, K] say which prototypes (clusters, instances) a row's softmax runs
over (those of its own or of the other homogeneous group). A row whose target
is missing (weight 0) contributes nothing; each term is a mean over the rows
that have one, 0 when none has.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jreid.ops import masked_mean

_NEG = -1e9  # The logit of a prototype outside a row's set.


def _masked_log_softmax(logits: jax.Array, allowed: jax.Array) -> jax.Array:
  return jax.nn.log_softmax(jnp.where(allowed, logits, _NEG), axis=-1)


def prototype_contrast(features: jax.Array, prototypes: jax.Array, targets: jax.Array, allowed: jax.Array,
                       temperature: float) -> jax.Array:
  """−log( exp(f·c₊/τ) / Σ_k∈allowed exp(f·c_k/τ) ) averaged over rows with a target (targets ≥ 0).

  ℓ_homo (targets: own clusters, allowed: the own group's) and ℓ_chm (targets:
  the matched cluster of the other group, allowed: the other group's).
  """
  logits = features @ prototypes.T / temperature
  log_p = _masked_log_softmax(logits, allowed)
  picked = jnp.take_along_axis(log_p, jnp.clip(targets, 0)[:, None], axis=1)[:, 0]
  return masked_mean(-picked, targets >= 0)


def instance_positive_contrast(features: jax.Array, bank: jax.Array, positives: jax.Array, allowed: jax.Array,
                               temperature: float) -> jax.Array:
  """ℓ_ihm: −1/|P_i| Σ_p∈P_i log( exp(f_i·f_p/τ) / Σ_j∈allowed exp(f_i·f_j/τ) ), over rows with a positive.

  bank: instance features [N, D]; positives: [B, k] bank rows, −1 padded.
  """
  log_p = _masked_log_softmax(features @ bank.T / temperature, allowed)
  valid = positives >= 0
  picked = jnp.take_along_axis(log_p, jnp.clip(positives, 0), axis=1)
  return masked_mean(-masked_mean(picked, valid, axis=1), jnp.any(valid, axis=1))


def text_guided(features: jax.Array, instance_text: jax.Array, cluster_text: jax.Array, allowed: jax.Array,
                temperature: float) -> jax.Array:
  """ℓ_tg: −log( exp(f_i·t_i/τ) / Σ_k∈allowed exp(f_i·t_k/τ) ), t_i the image's own (instance) text feature."""
  positive = jnp.sum(features * instance_text, axis=-1) / temperature
  logits = jnp.where(allowed, features @ cluster_text.T / temperature, _NEG)
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - positive)


def image_to_text(images: jax.Array, texts: jax.Array, temperature: float) -> jax.Array:
  """ℓ_i2t: row i's image against the batch's texts t_{y_a}; texts[i] = t_{y_i} is its positive."""
  log_p = jax.nn.log_softmax(images @ texts.T / temperature, axis=-1)
  return -jnp.mean(jnp.diagonal(log_p))


def text_to_image(images: jax.Array, texts: jax.Array, labels: jax.Array, temperature: float) -> jax.Array:
  """ℓ_t2i: row i's text t_{y_i} against the batch's images; the images of label y_i are its positives."""
  log_p = jax.nn.log_softmax(texts @ images.T / temperature, axis=-1)
  positive = labels[:, None] == labels[None, :]
  return -jnp.mean(masked_mean(log_p, positive, axis=1))


def scenario_separation(texts: jax.Array, scenario: jax.Array, margin: float) -> jax.Array:
  """ℓ_sep: mean over pairs of texts of different scenarios of [cos(t_i, t_j) − m]+ (0 without such pairs)."""
  pairs = scenario[:, None] != scenario[None, :]
  return masked_mean(jax.nn.relu(texts @ texts.T - margin), pairs)
