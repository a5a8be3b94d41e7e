"""Cluster memory and cluster contrast loss against NumPy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreid.cluster import init_memory, momentum_update
from jreid.losses import cluster_contrast_loss


def unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_cluster_init_memory_is_normalised_member_mean():
  rng = np.random.default_rng(0)
  x = unit(rng.normal(size=(20, 8))).astype(np.float32)
  labels = rng.integers(-1, 4, 20)
  labels[:4] = [0, 1, 2, 3]
  got = init_memory(x, labels)
  want = unit(np.stack([x[labels == k].mean(0) for k in range(4)]))
  np.testing.assert_allclose(got, want, atol=1e-6)
  padded = init_memory(x, labels, num_clusters=6)  # static K; empty clusters are zero
  np.testing.assert_allclose(padded[:4], want, atol=1e-6)
  np.testing.assert_array_equal(padded[4:], 0)


@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_cluster_momentum_update_matches_sequential_loop(momentum):
  rng = np.random.default_rng(1)
  memory = unit(rng.normal(size=(5, 8))).astype(np.float32)
  x = unit(rng.normal(size=(24, 8))).astype(np.float32)
  labels = rng.integers(-1, 5, 24)  # repeats of one cluster, in any order, and outliers
  want = memory.astype(np.float64).copy()
  for feature, label in zip(x, labels):
    if label >= 0:
      want[label] = unit(momentum * want[label] + (1 - momentum) * feature)
  got = jax.jit(momentum_update)(memory, x, labels, momentum)
  np.testing.assert_allclose(got, want, atol=1e-6)
  np.testing.assert_array_equal(momentum_update(memory, x, np.full(24, -1)), memory)


def numpy_loss(x, labels, memory, temperature, keep):
  logits = x.astype(np.float64) @ memory.T / temperature
  log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(
      1, keepdims=True)
  rows = [i for i in range(len(x)) if labels[i] >= 0 and keep[i]]
  return -np.mean([log_probs[i, labels[i]] for i in rows])


def test_cluster_contrast_loss_matches_numpy():
  rng = np.random.default_rng(2)
  memory = unit(rng.normal(size=(7, 16))).astype(np.float32)
  x = unit(rng.normal(size=(12, 16))).astype(np.float32)
  labels = rng.integers(-1, 7, 12)
  valid = rng.random(12) < 0.8
  for temperature in (0.05, 1.0):
    got = cluster_contrast_loss(x, labels, memory, temperature)
    np.testing.assert_allclose(got, numpy_loss(x, labels, memory, temperature, np.ones(12, bool)), rtol=1e-5)
  got = jax.jit(cluster_contrast_loss)(x, labels, memory, 0.05, valid)
  np.testing.assert_allclose(got, numpy_loss(x, labels, memory, 0.05, valid), rtol=1e-5)
  assert cluster_contrast_loss(x, np.full(12, -1), memory) == 0.0


def test_cluster_contrast_loss_gradient_reaches_features_only():
  rng = np.random.default_rng(3)
  memory = jnp.asarray(unit(rng.normal(size=(4, 8))), jnp.float32)
  x = jnp.asarray(unit(rng.normal(size=(6, 8))), jnp.float32)
  labels = jnp.array([0, 1, -1, 3, 3, 2])
  grad_x, grad_memory = jax.grad(cluster_contrast_loss, argnums=(0, 2))(x, labels, memory)
  assert np.all(np.abs(grad_x[labels >= 0]).sum(1) > 0) and np.all(grad_x[2] == 0)
  np.testing.assert_array_equal(grad_memory, 0)
