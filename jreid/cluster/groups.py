"""ITKM's two homogeneous groups (A = 0, B = 1) of a scenario's training images."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn.cluster import KMeans

from data_pipelines.records import Record


def _field(records: Sequence[Record] | Mapping[str, Sequence], name: str) -> np.ndarray:
  if isinstance(records, Mapping):
    if name not in records:
      raise ValueError(f"split_groups needs the per-item '{name}' array, got keys {sorted(records)}")
    return np.asarray(records[name])
  return np.asarray([getattr(record, name) for record in records])


def split_groups(records: Sequence[Record] | Mapping[str, Sequence], scenario: str,
                 features: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
  """int32 [N] group ids of one scenario's items.

  records: Record objects, or a mapping of field name to per-item array
  ('modality', 'scale'). visible_infrared: rgb 0, ir 1; cross_resolution:
  scale 1 (full resolution) 0, down-sampled 1; clothes_change: k-means
  (k = 2, seeded) on the items' initial features [N, D], the group of item 0
  being 0.
  """
  if scenario == "visible_infrared":
    modality = _field(records, "modality")
    unknown = sorted(set(modality.tolist()) - {"rgb", "ir"})
    if unknown:
      raise ValueError(f"visible_infrared groups need modality 'rgb' or 'ir', got {unknown}")
    return (modality == "ir").astype(np.int32)
  if scenario == "cross_resolution":
    return (_field(records, "scale") != 1).astype(np.int32)
  if scenario == "clothes_change":
    count = len(next(iter(records.values()), ())) if isinstance(records, Mapping) else len(records)
    if features is None or len(features) != count:
      raise ValueError(f"clothes_change groups need the initial features of the {count} items, one row each")
    groups = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(np.asarray(features, np.float32))
    return (groups != groups[0]).astype(np.int32)
  raise ValueError(f"unknown scenario {scenario!r}; expected 'visible_infrared', 'cross_resolution' or "
                   "'clothes_change'")
