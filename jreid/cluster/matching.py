"""Cluster matching across two groups (PGM, Wu and Ye 2023) and ITKM's image/text agreement."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def match_clusters(sim_ab: np.ndarray) -> np.ndarray:
  """int64 [P, 2] pairs (cluster of A, cluster of B) from centroid cosine similarities [Ka, Kb].

  Hungarian assignment at cost 1 / exp(cos) matches min(Ka, Kb) pairs; a
  second assignment then matches the larger side's leftovers to the smaller
  side (whose clusters may so get two partners; leftovers beyond its size
  stay unmatched). Pairs are sorted.
  """
  sim_ab = np.asarray(sim_ab, np.float64)
  if sim_ab.ndim != 2:
    raise ValueError(f"match_clusters expects a [Ka, Kb] similarity matrix, got shape {sim_ab.shape}")
  swap = sim_ab.shape[0] < sim_ab.shape[1]
  cost = np.exp(-(sim_ab.T if swap else sim_ab))  # rows: the larger side
  rows, cols = linear_sum_assignment(cost)
  leftover = np.setdiff1d(np.arange(cost.shape[0]), rows)
  again_rows, again_cols = linear_sum_assignment(cost[leftover])
  pairs = np.stack([np.concatenate([rows, leftover[again_rows]]), np.concatenate([cols, again_cols])], axis=1)
  if swap:
    pairs = pairs[:, ::-1]
  return pairs[np.lexsort(pairs.T[::-1])].astype(np.int64)


def agreeing_pairs(image_pairs: np.ndarray, text_pairs: np.ndarray, rng: np.random.Generator,
                   p: float = 0.5) -> np.ndarray:
  """The image pairs [P, 2] that text_pairs also holds, and each other one with probability p.

  Order is kept. One uniform draw per image pair (agreeing ones included),
  so the kept set depends on the rng state alone.
  """
  image_pairs = np.asarray(image_pairs, np.int64).reshape(-1, 2)
  text_pairs = np.asarray(text_pairs, np.int64).reshape(-1, 2)
  base = int(max(image_pairs.max(initial=0), text_pairs.max(initial=0))) + 1
  agree = np.isin(image_pairs @ [base, 1], text_pairs @ [base, 1])
  return image_pairs[agree | (rng.random(len(image_pairs)) < p)]
