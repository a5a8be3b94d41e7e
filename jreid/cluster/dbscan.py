"""Pseudo labels: DBSCAN (scikit-learn, on the host) over a sparse Jaccard graph."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN

from jreid.cluster.jaccard import NeighbourGraph


def cluster(graph: NeighbourGraph, eps: float = 0.6, min_samples: int = 4) -> np.ndarray:
  """int32 [N] cluster labels 0..K-1, -1 for outliers.

  DBSCAN(metric='precomputed') on the graph's pairs within eps: absent pairs
  (distance 1) are never neighbours, as they would not be in the dense matrix
  for any eps < 1. min_samples counts the item itself.
  """
  if not 0 <= eps < 1:
    raise ValueError(f"eps must lie in [0, 1) for Jaccard distances, got {eps}")
  dbscan = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed")
  return dbscan.fit_predict(graph.to_csr(eps_cutoff=eps)).astype(np.int32)
