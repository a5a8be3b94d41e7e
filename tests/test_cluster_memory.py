"""Cluster memory against NumPy loops."""

import jax
import numpy as np
import pytest

from jreid.cluster import init_memory, momentum_update


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
