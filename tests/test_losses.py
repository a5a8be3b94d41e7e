"""Losses against plain NumPy loops written independently of the jax code."""

import numpy as np
import pytest

from jreid import losses


def _reference_batch_hard(features, labels, margin):
  n = len(labels)
  total, count = 0.0, 0
  for a in range(n):
    dists = np.sqrt(((features - features[a]) ** 2).sum(1))
    pos = [dists[j] for j in range(n) if labels[j] == labels[a] and j != a]
    neg = [dists[j] for j in range(n) if labels[j] != labels[a]]
    if not pos or not neg:
      continue
    gap = max(pos) - min(neg)
    total += np.log1p(np.exp(gap)) if margin is None else max(gap + margin, 0.0)
    count += 1
  return total / max(count, 1)


@pytest.mark.parametrize("margin", [0.3, None])
def test_batch_hard_triplet_matches_loop(margin):
  rng = np.random.default_rng(0)
  features = rng.normal(size=(12, 5)).astype(np.float32)
  labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4, 4])  # id 3 has no positive
  got = float(losses.batch_hard_triplet(features, labels, margin=margin))
  np.testing.assert_allclose(got, _reference_batch_hard(features.astype(np.float64), labels, margin), rtol=1e-5)


def test_batch_hard_triplet_hand_case():
  # Anchor 0 at 0, positive at 1, negative at 3 (1-D): gap = 1 - 3 = -2 -> relu(-2 + 0.3) = 0.
  # Anchor 1 at 1: positive 0 at distance 1, negative at distance 2 -> relu(1 - 2 + 3) = 2 with margin 3.
  features = np.array([[0.0], [1.0], [3.0], [3.5]], np.float32)
  labels = np.array([0, 0, 1, 1])
  # Anchors: 0 -> max(1 - 3 + 3, 0) = 1; 1 -> 1 - 2 + 3 = 2; 2 -> 0.5 - 2 + 3 = 1.5; 3 -> 0.5 - 2.5 + 3 = 1.
  np.testing.assert_allclose(float(losses.batch_hard_triplet(features, labels, margin=3.0)), (1 + 2 + 1.5 + 1) / 4, rtol=1e-6)


def _reference_batch_hard_gradient(features, labels, margin):
  """The analytic gradient of the margin batch-hard loss: unit vectors along the mined pairs."""
  n = len(labels)
  grad, count = np.zeros_like(features), 0
  for a in range(n):
    dists = np.sqrt(((features - features[a]) ** 2).sum(1))
    pos = [j for j in range(n) if labels[j] == labels[a] and j != a]
    neg = [j for j in range(n) if labels[j] != labels[a]]
    if not pos or not neg:
      continue
    count += 1
    p, q = max(pos, key=lambda j: dists[j]), min(neg, key=lambda j: dists[j])
    if dists[p] - dists[q] + margin > 0:
      along_p, along_q = (features[a] - features[p]) / dists[p], (features[a] - features[q]) / dists[q]
      grad[a] += along_p - along_q
      grad[p] -= along_p
      grad[q] += along_q
  return grad / count


@pytest.mark.parametrize("loss", ["plain", "adaptive"])
def test_batch_hard_triplet_gradient(loss):
  import jax
  import jax.numpy as jnp
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(4), 3)
  same = (labels[:, None] == labels[None, :]).astype(np.float32)  # equal relatedness: the plain loss

  def fn(f):
    if loss == "plain":
      return losses.batch_hard_triplet(f, jnp.asarray(labels), margin=0.3)
    return losses.adaptive_batch_hard_triplet(f, jnp.asarray(labels), jnp.asarray(same), 0.3, intra_weight=0.0)

  features = rng.normal(size=(12, 6)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(jax.grad(fn)(jnp.asarray(features))),
                             _reference_batch_hard_gradient(features.astype(np.float64), labels, 0.3), atol=1e-5)
  # Nearly collapsed features far from the origin (a fresh tower, a strong augmentation): the pairwise
  # expansion's rounding noise once gave gradient norms above 1,000. Each anchor adds unit vectors of
  # squared norm at most 4 + 1 + 1, so the mean over anchors is at most sqrt(6).
  collapsed = 3 * rng.normal(size=(1, 256)) + 1e-3 * rng.normal(size=(12, 256))
  norm = float(jnp.linalg.norm(jax.grad(fn)(jnp.asarray(collapsed, jnp.float32))))
  assert 0 < norm <= np.sqrt(6)


def test_cross_entropy_label_smoothing():
  logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
  labels = np.array([0, 2])
  eps = 0.1
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  targets = np.full((2, 3), eps / 3)
  targets[0, 0] += 1 - eps
  targets[1, 2] += 1 - eps
  want = -(targets * logp).sum(1).mean()
  np.testing.assert_allclose(float(losses.cross_entropy(logits, labels, eps)), want, rtol=1e-6)
