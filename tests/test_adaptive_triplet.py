"""Adaptive triplet loss: the paper's two cases, hand-computed batches and a NumPy loop reference."""

import numpy as np
import pytest

from jreid import losses

M = 0.3


def test_equal_instruction_similarity_gives_margin_zero():
  # Paper, Fig. 4(b): same identity, equally related instructions: no margin, whatever the distances.
  for d1, d2 in [(1.0, 1.0), (2.0, 0.5), (0.5, 2.0)]:
    assert float(losses.adaptive_triplet_term(d1, d2, 0.7, 0.7, M)) == 0.0


@pytest.mark.parametrize("beta1, beta2", [(1.0, 0.0), (0.999, 0.001), (0.99, 0.02)])
def test_very_different_similarity_approaches_maximal_margin(beta1, beta2):
  # Paper, Fig. 4(c): with equal distances the loss is the margin, (beta1 - beta2) m -> m.
  got = float(losses.adaptive_triplet_term(1.0, 1.0, beta1, beta2, M))
  np.testing.assert_allclose(got, (beta1 - beta2) * M, rtol=1e-6)
  assert got >= 0.96 * M


def test_term_by_hand():
  # r1 more related: r1 must be closer by 0.5 * 0.3 = 0.15.
  np.testing.assert_allclose(float(losses.adaptive_triplet_term(1.0, 1.1, 0.9, 0.4, M)), 1.0 + 0.15 - 1.1, atol=1e-6)
  assert float(losses.adaptive_triplet_term(1.0, 1.2, 0.9, 0.4, M)) == 0.0
  # r2 more related: the sign flips, so r2 must be closer: [-(1.0 - 0.15 - 1.1)]+ = 0.25.
  np.testing.assert_allclose(float(losses.adaptive_triplet_term(1.0, 1.1, 0.4, 0.9, M)), 0.25, atol=1e-6)


def test_relatedness_by_hand():
  labels = np.array([0, 0, 1])
  instructions = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]], np.float32)
  beta = np.asarray(losses.instruction_relatedness(labels, instructions))
  np.testing.assert_allclose(beta, [[1, 2**-0.5, 0], [2**-0.5, 1, 0], [0, 0, 1]], atol=1e-6)


def test_batch_hard_by_hand():
  # 1-D features; identity 0 at 0, 1, 3 with instructions making item 2 less related to item 0 than item 1.
  features = np.array([[0.0], [1.0], [3.0], [10.0], [10.5]], np.float32)
  labels = np.array([0, 0, 0, 1, 1])
  beta = np.array([[1.0, 0.9, 0.5, 0, 0],
                   [0.9, 1.0, 0.8, 0, 0],
                   [0.5, 0.8, 1.0, 0, 0],
                   [0, 0, 0, 1.0, 1.0],
                   [0, 0, 0, 1.0, 1.0]], np.float32)
  m = 1.0
  # (a, p1, n): anchor 0: p1 = 2 (d 3), n = 3 (d 10): [3 + 0.5 - 10]+ = 0; anchor 2: p1 = 0 (d 3), n = 3 (d 7): 0;
  # anchor 1: p1 = 2 (d 2), n = 3 (d 9): 0; anchors 3, 4: p1 at 0.5, n = item 2 at 7 / 7.5: 0.
  # (a, p1, p2): anchor 0: p1 = 2 (d 3, beta 0.5), p2 = 1 (d 1, beta 0.9): sign -1 -> [-(3 - 0.4 - 1)]+ = 0.
  # anchor 1: p1 = 2 (d 2, beta 0.8), p2 = 0 (d 1, beta 0.9): [-(2 - 0.1 - 1)]+ = 0.
  # anchor 2: p1 = 0 (d 3, beta 0.5), p2 = 1 (d 2, beta 0.8): [-(3 - 0.3 - 2)]+ = 0.
  assert float(losses.adaptive_batch_hard_triplet(features, labels, beta, m)) == 0.0
  # Move item 1 to 2.9: anchor 0 now has p1 = 2 (d 3, beta 0.5), p2 = 1 (d 2.9, beta 0.9):
  # [-(3 - 0.4 - 2.9)]+ = 0.3; anchor 1: p1 = 0 (d 2.9, beta 0.9), p2 = 2 (d 0.1, beta 0.8): [2.9 + 0.1 - 0.1]+ = 2.9;
  # anchor 2: p1 = 0 (d 3, beta 0.5), p2 = 1 (d 0.1, beta 0.8): [-(3 - 0.3 - 0.1)]+ = 0. Intra mean (0.3 + 2.9) / 3.
  features[1, 0] = 2.9
  got = float(losses.adaptive_batch_hard_triplet(features, labels, beta, m))
  np.testing.assert_allclose(got, (0.3 + 2.9) / 3, rtol=1e-5)
  np.testing.assert_allclose(float(losses.adaptive_batch_hard_triplet(features, labels, beta, m, intra_weight=0.0)),
                             0.0, atol=1e-6)


def test_identical_instructions_reduce_to_batch_hard_triplet():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(12, 5)).astype(np.float32)
  labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4, 4])
  beta = (labels[:, None] == labels[None, :]).astype(np.float32)
  got = float(losses.adaptive_batch_hard_triplet(features, labels, beta, M))
  np.testing.assert_allclose(got, float(losses.batch_hard_triplet(features, labels, M)), rtol=1e-6)


def _reference(features, labels, beta, margin, valid, intra_weight):
  term = lambda d1, d2, b1, b2: max(np.sign(b1 - b2) * (d1 + (b1 - b2) * margin - d2), 0.0)
  inter, intra = [], []
  for a in np.flatnonzero(valid):
    dists = np.sqrt(((features - features[a]) ** 2).sum(1))
    pos = sorted((j for j in np.flatnonzero(valid) if labels[j] == labels[a] and j != a), key=lambda j: -dists[j])
    neg = [j for j in np.flatnonzero(valid) if labels[j] != labels[a]]
    if pos and neg:
      n = min(neg, key=lambda j: dists[j])
      inter.append(term(dists[pos[0]], dists[n], beta[a, pos[0]], beta[a, n]))
    if len(pos) >= 2:
      intra.append(term(dists[pos[0]], dists[pos[1]], beta[a, pos[0]], beta[a, pos[1]]))
  return np.mean(inter) + intra_weight * np.mean(intra)


def test_matches_loop_reference_with_mask():
  rng = np.random.default_rng(1)
  features = rng.normal(size=(16, 6)).astype(np.float32)
  labels = np.repeat(np.arange(4), 4)
  instructions = rng.normal(size=(16, 8)).astype(np.float32)
  beta = np.asarray(losses.instruction_relatedness(labels, instructions))
  valid = np.ones(16, bool)
  valid[[3, 9]] = False
  got = float(losses.adaptive_batch_hard_triplet(features, labels, beta, M, valid=valid, intra_weight=0.5))
  want = _reference(features.astype(np.float64), labels, beta.astype(np.float64), M, valid, 0.5)
  np.testing.assert_allclose(got, want, rtol=1e-5)
