"""Sparse k-reciprocal Jaccard distances against a dense NumPy reference."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eval_reference import k_reciprocal_vectors
from jreid.cluster import NeighbourGraph, jaccard, k_reciprocal_jaccard


def dense_jaccard(features, k1, k2):
  """The published per-item loops over dense [N, N] matrices, in float64 (cosine ranking)."""
  x = np.asarray(features, np.float64)
  n = len(x)
  dist = 2.0 - 2.0 * x @ x.T
  v = k_reciprocal_vectors(dist, np.argsort(-(x @ x.T), axis=1, kind="stable"), k1, k2)
  shared = np.stack([np.minimum(v[i], v).sum(1) for i in range(n)])
  return np.maximum(1.0 - shared / (2.0 - shared), 0.0)


def clustered_features(rng, n, dim=16, clusters=12, noise=0.6):
  centres = rng.normal(size=(clusters, dim))
  x = centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, dim))
  return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def graph_as_dense(graph: NeighbourGraph) -> np.ndarray:
  """Stored distances, 1 for absent pairs."""
  csr = graph.to_csr()
  dense = np.ones(csr.shape)
  rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
  dense[rows, csr.indices] = csr.data
  return dense


@pytest.mark.parametrize("n,k1,k2,chunk,clustered", [(300, 30, 6, 64, True), (240, 20, 1, 1000, False),
                                                     (211, 7, 3, 50, True)])
def test_cluster_jaccard_matches_dense_reference(n, k1, k2, chunk, clustered):
  rng = np.random.default_rng(n)
  features = clustered_features(rng, n) if clustered else clustered_features(rng, n, dim=32, clusters=n)
  graph = k_reciprocal_jaccard(features, k1=k1, k2=k2, chunk=chunk)
  want = dense_jaccard(features, k1, k2)
  np.testing.assert_allclose(graph_as_dense(graph), want, atol=2e-6)
  # Exactly the pairs below 1 are stored, each once, in ascending order.
  stored = graph.indices < n
  np.testing.assert_array_equal(stored.sum(1), (want < 1).sum(1))
  assert np.all(stored[:, :-1] >= stored[:, 1:])
  assert all(np.all(np.diff(row[row < n]) > 0) for row in graph.indices)


def test_cluster_jaccard_max_distance_and_cutoff():
  features = clustered_features(np.random.default_rng(1), 200)
  full = k_reciprocal_jaccard(features, k1=10, k2=4)
  near = k_reciprocal_jaccard(features, k1=10, k2=4, max_distance=0.6)
  np.testing.assert_allclose(near.to_csr().toarray(), full.to_csr(eps_cutoff=0.6).toarray())
  assert near.to_csr().nnz == full.to_csr(eps_cutoff=0.6).nnz < full.to_csr().nnz


def test_cluster_neighbour_graph_to_csr_keeps_zero_distances():
  graph = NeighbourGraph(np.array([[0, 2, 3], [1, 3, 3], [0, 2, 3]], np.int32),
                         np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.5, 1.0]], np.float32))
  csr = graph.to_csr()
  np.testing.assert_array_equal(csr.indptr, [0, 2, 3, 5])
  np.testing.assert_array_equal(csr.indices, [0, 2, 1, 0, 2])
  np.testing.assert_array_equal(csr.data, [0, 0, 0, 0, 0.5])
  assert graph.to_csr(eps_cutoff=0.4).nnz == 4


def test_cluster_jaccard_rejects_too_few_items():
  with pytest.raises(ValueError, match="N > k1"):
    k_reciprocal_jaccard(np.eye(5, dtype=np.float32), k1=5)


def largest_array(closed_jaxpr) -> int:
  """Elements of the largest value a jaxpr (nested ones included) computes."""
  def sizes(jaxpr):
    for eqn in jaxpr.eqns:
      yield from (int(np.prod(var.aval.shape)) for var in eqn.outvars)
      for param in eqn.params.values():
        for inner in param if isinstance(param, (list, tuple)) else (param,):
          inner = getattr(inner, "jaxpr", inner)
          if hasattr(inner, "eqns"):
            yield from sizes(inner)
  return max(sizes(closed_jaxpr.jaxpr))


def test_cluster_jaccard_holds_no_n_by_n_array():
  n, dim, width = 20000, 64, 128
  features = jax.ShapeDtypeStruct((n, dim), jnp.float32)
  ranks = jax.ShapeDtypeStruct((n, 31), jnp.int32)
  members = jax.ShapeDtypeStruct((n, width), jnp.int32)
  values = jax.ShapeDtypeStruct((n, width), jnp.float32)
  steps = [jax.make_jaxpr(functools.partial(jaccard._expanded_sets, k1=30, chunk=256))(features),
           jax.make_jaxpr(functools.partial(jaccard._encodings, k2=6, chunk=256))(features, ranks, members),
           jax.make_jaxpr(functools.partial(jaccard._jaccard, depth=256, width=width, chunk=256))(
               members, values, jax.ShapeDtypeStruct((), jnp.float32))]
  # At most per-item lists (the sets: 31 x 17 per item; merged V rows: 6 x width) or a chunk's
  # triples of the distance step: 1/24 of N^2 here, and a falling share as N grows.
  bound = max((n + 256) * max(31 * 17, 6 * width), jaccard._TRIPLES_PER_CHUNK)
  assert all(largest_array(step) <= bound for step in steps)
