"""DBSCAN on the sparse Jaccard graph against scikit-learn on the dense matrix."""

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from jreid.cluster import NeighbourGraph, cluster, k_reciprocal_jaccard


def test_cluster_dbscan_matches_dense_sklearn():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(15, 32))
  x = centres[rng.integers(0, 15, 400)] + 0.8 * rng.normal(size=(400, 32))
  x = np.concatenate([x, rng.normal(size=(40, 32)) * 3])  # scattered items, mostly outliers
  x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
  graph = k_reciprocal_jaccard(x, k1=20, k2=6)
  csr = graph.to_csr()
  dense = np.ones(csr.shape, np.float32)  # absent pairs: distance 1
  dense[np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)), csr.indices] = csr.data
  for eps, min_samples in ((0.6, 4), (0.5, 8)):
    labels = cluster(graph, eps=eps, min_samples=min_samples)
    want = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dense)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, want)
    assert labels.max() >= 10 and np.any(labels == -1)


def test_cluster_dbscan_counts_stored_zero_distances():
  # Items 0..3 are duplicates (distance 0, stored); item 4 is absent from all.
  indices = np.array([[0, 1, 2, 3]] * 4 + [[4, 5, 5, 5]], np.int32)
  distances = np.array([[0.0] * 4] * 4 + [[0.0, 1, 1, 1]], np.float32)
  np.testing.assert_array_equal(cluster(NeighbourGraph(indices, distances), min_samples=4), [0, 0, 0, 0, -1])


def test_cluster_dbscan_rejects_eps_outside_jaccard_range():
  graph = NeighbourGraph(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.float32))
  with pytest.raises(ValueError, match="eps"):
    cluster(graph, eps=1.0)
