"""Pseudo-label quality against true identities: pairwise precision, recall and F-score."""

from __future__ import annotations

import numpy as np


def _pairs(counts: np.ndarray) -> int:
  counts = np.asarray(counts, np.int64)
  return int(np.sum(counts * (counts - 1) // 2))


def pairwise_scores(pseudo: np.ndarray, true: np.ndarray) -> dict:
  """Pair counting over the items' unordered pairs, from contingency counts.

  Predicted pairs: two items of one pseudo cluster (outliers, label -1, form
  none); true pairs: two items of one identity, outliers included, so that
  discarding an item costs recall. precision = shared / predicted, recall =
  shared / true (0.0 when a denominator is 0), fscore their harmonic mean;
  clusters and outliers count the pseudo clusters and the -1 labels.
  """
  pseudo, true = np.asarray(pseudo).reshape(-1), np.asarray(true).reshape(-1)
  if pseudo.shape != true.shape:
    raise ValueError(f"pseudo and true labels differ in length: {pseudo.shape[0]} vs {true.shape[0]}")
  clustered = pseudo >= 0
  _, cells = np.unique(np.stack([pseudo[clustered], true[clustered]]), axis=1, return_counts=True)
  shared = _pairs(cells)
  predicted = _pairs(np.unique(pseudo[clustered], return_counts=True)[1])
  actual = _pairs(np.unique(true, return_counts=True)[1])
  precision = shared / predicted if predicted else 0.0
  recall = shared / actual if actual else 0.0
  fscore = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {"precision": precision, "recall": recall, "fscore": fscore,
          "clusters": int(np.unique(pseudo[clustered]).size), "outliers": int(np.sum(~clustered))}
