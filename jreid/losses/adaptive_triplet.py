"""Instruct-ReID's adaptive triplet loss (paper eq. 5-6) with batch-hard mining.

For a triplet (anchor a, references r1, r2) with relatednesses
beta_j = 1[y_a = y_rj] cos(F_T^a, F_T^rj) of their instructions:

    [ sign(beta1 - beta2) (d(a, r1) + (beta1 - beta2) m - d(a, r2)) ]+

Equal relatednesses give margin 0 (the term vanishes); very different ones a
margin approaching m, the reference with the more related instruction
pulled closer.
"""

import jax
import jax.numpy as jnp

from jreid.losses.triplet import pairwise_distance, pairwise_squared_distance, row_distance
from jreid.ops import l2_normalize, masked_mean


def adaptive_triplet_term(d1: jax.Array, d2: jax.Array, beta1: jax.Array, beta2: jax.Array,
                          margin: float) -> jax.Array:
  """Eq. 5 per triplet, from the distances d(a, r_j) and relatednesses beta_j (any equal shapes)."""
  delta = beta1 - beta2
  return jax.nn.relu(jnp.sign(delta) * (d1 + delta * margin - d2))


def instruction_relatedness(labels: jax.Array, instruction_features: jax.Array) -> jax.Array:
  """Eq. 6 for all pairs: beta [N, N] = 1[y_i = y_j] cos(F_T^i, F_T^j), held constant (no gradient)."""
  unit = l2_normalize(instruction_features)
  same = labels[:, None] == labels[None, :]
  return jax.lax.stop_gradient(jnp.where(same, unit @ unit.T, 0.0))


def adaptive_batch_hard_triplet(features: jax.Array, labels: jax.Array, relatedness: jax.Array, margin: float,
                                valid: jax.Array | None = None, intra_weight: float = 1.0,
                                squared: bool = False, anchor_weights: jax.Array | None = None) -> jax.Array:
  """Adaptive triplet loss over the batch-hard triplets of every anchor.

  Each anchor a gives two triplets: (a, p1, n), its farthest positive and
  nearest negative (beta_n = 0: with the same instruction for every image of
  an identity this is the batch-hard triplet loss with margin m), and
  (a, p1, p2), its two farthest positives, which orders the anchor's own
  identity by instruction relatedness. The loss is the mean of the first kind
  plus intra_weight times the mean of the second, each over the anchors that
  have such a triplet.

  Args:
    features: [N, D] features.
    labels: [N] identities.
    relatedness: [N, N] beta (`instruction_relatedness`); all ones on the
      same identity reduces the loss to the plain batch-hard triplet.
    margin: the maximal margin m.
    valid: optional bool [N]; rows outside it are neither anchors nor references.
    intra_weight: weight of the (a, p1, p2) triplets.
    squared: squared Euclidean distance (the paper's d) instead of Euclidean
      (the released code's, and that of `batch_hard_triplet`).
    anchor_weights: optional [N] factors on each anchor's triplet losses (the
      means still divide by the number of anchors).
  """
  n = labels.shape[0]
  dist = jax.lax.stop_gradient(  # mining only; the mined pairs' distances come from row_distance
      (pairwise_squared_distance if squared else pairwise_distance)(features, features))
  valid = jnp.ones(n, bool) if valid is None else valid.astype(bool)
  pair = valid[:, None] & valid[None, :]
  same = labels[:, None] == labels[None, :]
  positive = same & ~jnp.eye(n, dtype=bool) & pair
  negative = ~same & pair
  far_mined, far_index = jax.lax.top_k(jnp.where(positive, dist, -jnp.inf), 2)
  near_index = jnp.argmin(jnp.where(negative, dist, jnp.inf), axis=1)
  far_dist = jnp.where(jnp.isfinite(far_mined), row_distance(features, far_index, squared), -jnp.inf)
  near_dist = row_distance(features, near_index, squared)
  beta_far = jnp.take_along_axis(relatedness, far_index, axis=1)
  beta_near = jnp.take_along_axis(relatedness, near_index[:, None], axis=1)[:, 0]
  has_negative = jnp.any(negative, axis=1)
  inter_valid = jnp.isfinite(far_dist[:, 0]) & has_negative
  intra_valid = jnp.isfinite(far_dist[:, 1])
  far_dist = jnp.where(jnp.isfinite(far_dist), far_dist, 0.0)
  near_dist = jnp.where(has_negative, near_dist, 0.0)
  inter = adaptive_triplet_term(far_dist[:, 0], near_dist, beta_far[:, 0], beta_near, margin)
  intra = adaptive_triplet_term(far_dist[:, 0], far_dist[:, 1], beta_far[:, 0], beta_far[:, 1], margin)
  if anchor_weights is not None:
    inter, intra = inter * anchor_weights, intra * anchor_weights
  return masked_mean(inter, inter_valid) + intra_weight * masked_mean(intra, intra_valid)
