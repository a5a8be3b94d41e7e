"""Contrastive losses against NumPy loops and hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreid import losses


def _log_softmax(row):
  row = row - row.max()
  return row - np.log(np.exp(row).sum())


def _reference_info_nce(a, b, scale, labels):
  a = a / np.linalg.norm(a, axis=1, keepdims=True)
  b = b / np.linalg.norm(b, axis=1, keepdims=True)
  logits = scale * a @ b.T
  out = []
  for i in range(len(labels)):
    positives = [j for j in range(len(labels)) if labels[j] == labels[i]]
    a_to_b = -np.mean([_log_softmax(logits[i])[j] for j in positives])
    b_to_a = -np.mean([_log_softmax(logits[:, i])[j] for j in positives])
    out.append((a_to_b + b_to_a) / 2)
  return np.array(out)


def _reference_dynamic(loss_a, loss_b, alpha, gamma, eps=1e-9):
  p_a, p_b = np.exp(-loss_a), np.exp(-loss_b)
  w_a = (p_b + eps) * 2 * p_a * p_b / (p_a + p_b + eps)
  w_b = (p_a + eps) * 2 * p_a * p_b / (p_a + p_b + eps)
  return np.mean(alpha * (1 + w_a) ** gamma * loss_a) + np.mean(alpha * (1 + w_b) ** gamma * loss_b)


@pytest.mark.parametrize("labels", [np.arange(6), np.array([0, 0, 1, 2, 2, 2])])
def test_symmetric_info_nce_matches_numpy(labels):
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
  got = losses.symmetric_info_nce(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 7.0, jnp.asarray(labels))
  np.testing.assert_allclose(np.asarray(got), _reference_info_nce(a, b, 7.0, labels), rtol=1e-5)


def test_info_nce_hand_case():
  # Orthonormal pairs: logits = s * I, so each direction costs -log(e^s / (e^s + 1)) = log(1 + e^-s).
  s = 3.0
  got = losses.symmetric_info_nce(jnp.eye(2) * 5, jnp.eye(2), s, jnp.arange(2))
  np.testing.assert_allclose(np.asarray(got), np.log1p(np.exp(-s)) * np.ones(2), rtol=1e-6)
  # One label for both: the targets are (1/2, 1/2), so each row costs -(log p_0 + log p_1) / 2.
  same = losses.symmetric_info_nce(jnp.eye(2), jnp.eye(2), s, jnp.zeros(2, jnp.int32))
  expected = -0.5 * (np.log(np.exp(s) / (np.exp(s) + 1)) + np.log(1 / (np.exp(s) + 1)))
  np.testing.assert_allclose(np.asarray(same), expected * np.ones(2), rtol=1e-6)


def test_task_aware_weights_hand_values():
  # Both certain (p = 1): w = (1 + eps) * 2 / (2 + eps) ~ 1. One hopeless (p_b = 0): both weights ~ 0.
  w_a, w_b = losses.task_aware_weights(jnp.zeros(1), jnp.zeros(1))
  np.testing.assert_allclose([float(w_a[0]), float(w_b[0])], [1.0, 1.0], rtol=1e-6)
  w_a, w_b = losses.task_aware_weights(jnp.zeros(1), jnp.full(1, 50.0))
  assert float(w_a[0]) < 1e-12 and float(w_b[0]) < 1e-12
  # p_a = 0.5, p_b = 0.25: agreement = 2 * 0.125 / 0.75 = 1/3; w_a = 0.25 / 3, w_b = 0.5 / 3.
  w_a, w_b = losses.task_aware_weights(jnp.array([np.log(2.0)]), jnp.array([np.log(4.0)]))
  np.testing.assert_allclose([float(w_a[0]), float(w_b[0])], [0.25 / 3, 0.5 / 3], rtol=1e-5)


def test_dynamic_task_loss_matches_numpy_and_its_gradient():
  rng = np.random.default_rng(1)
  loss_a, loss_b = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
  got = losses.dynamic_task_loss(jnp.asarray(loss_a), jnp.asarray(loss_b), alpha=0.7, gamma=3.5)
  np.testing.assert_allclose(float(got), _reference_dynamic(loss_a, loss_b, 0.7, 3.5), rtol=1e-5)
  # The released form differentiates through the weights: compare with central differences of NumPy.
  grad = jax.grad(lambda x: losses.dynamic_task_loss(x, jnp.asarray(loss_b, jnp.float32), 0.7, 3.5))(
      jnp.asarray(loss_a, jnp.float32))
  h = 1e-5
  numeric = [(_reference_dynamic(loss_a + h * e, loss_b, 0.7, 3.5) - _reference_dynamic(loss_a - h * e, loss_b, 0.7, 3.5))
             / (2 * h) for e in np.eye(8)]
  np.testing.assert_allclose(np.asarray(grad), numeric, rtol=1e-3, atol=1e-5)
  # With the weights held constant the gradient is alpha (1 + w_a)^gamma / N.
  held = jax.grad(lambda x: losses.dynamic_task_loss(x, jnp.asarray(loss_b, jnp.float32), 0.7, 3.5, True))(
      jnp.asarray(loss_a, jnp.float32))
  w_a, _ = losses.task_aware_weights(jnp.asarray(loss_a), jnp.asarray(loss_b))
  np.testing.assert_allclose(np.asarray(held), 0.7 * (1 + np.asarray(w_a)) ** 3.5 / 8, rtol=1e-5)


def test_distribution_alignment_matches_numpy_and_holds_the_teacher():
  rng = np.random.default_rng(2)
  student, teacher = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7)) * 3
  p = np.exp(np.array([_log_softmax(r) for r in teacher]))
  log_q = np.array([_log_softmax(r) for r in student])
  expected = -np.mean(np.sum(p * log_q, axis=1))
  got = losses.distribution_alignment(jnp.asarray(student), jnp.asarray(teacher))
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)
  # Cross-entropy = KL(teacher || student) + entropy(teacher).
  kl = np.mean(np.sum(p * (np.log(p) - log_q), axis=1))
  np.testing.assert_allclose(float(got), kl - np.mean(np.sum(p * np.log(p), axis=1)), rtol=1e-5)
  teacher_grad = jax.grad(lambda t: losses.distribution_alignment(jnp.asarray(student), t))(jnp.asarray(teacher))
  assert not np.any(np.asarray(teacher_grad))


def test_similarity_logits_are_scaled_cosines():
  a = jnp.array([[3.0, 4.0]])
  b = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  np.testing.assert_allclose(np.asarray(losses.similarity_logits(a, b, 10.0)), [[6.0, 8.0]], rtol=1e-6)


def test_symmetric_info_nce_leaves_invalid_pairs_out():
  # With a mask, the valid pairs' losses are those of the valid subset alone; the others' are 0.
  rng = np.random.default_rng(7)
  a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
  labels, valid = np.array([0, 0, 1, 1, 2, 2]), np.array([True, False, True, True, False, True])
  got = np.asarray(losses.symmetric_info_nce(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 7.0,
                                             jnp.asarray(labels), jnp.asarray(valid)))
  np.testing.assert_allclose(got[valid], _reference_info_nce(a[valid], b[valid], 7.0, labels[valid]), rtol=1e-5)
  assert np.all(got[~valid] == 0)
