"""Evaluation protocols: which gallery items a query is ranked against.

Records become small int arrays on the host (`encode_protocol`); the jittable
`pair_masks` turns a block of queries and the gallery into two boolean
matrices: `valid` (the item takes part in the query's ranking) and `positive`
(valid and a match: the same identity). Rules, per protocol:

- every protocol: identity -1 (unknown, distractor) matches nothing, and the
  gallery item a query was derived from (`Record.source` equal to the gallery
  `Record.path`: the photo a sketch was drawn from, a low-resolution query's
  original) is removed.
- `standard`, `general`, `cross_resolution`: items of the query's identity
  seen by the query's camera are removed.
- `cc` (clothes-changing): also items of the query's identity in the query's
  clothes are removed.
- `sysu_all`, `sysu_indoor` (SYSU-MM01, camids 0-based: camera c has camid
  c - 1): infrared queries against visible items of cameras 1, 2, 4, 5
  (indoor: 1, 2); camera-3 queries never see camera-2 items. Each trial's
  gallery holds one random item per (identity, camera) (`gallery_trials`).
- `v2i` / `i2v`: visible queries against infrared items / the reverse.
- `text`, `sketch`, `text+sketch`: no camera rule.
- `target_clothes` (clothes-template and language-instructed queries): no
  camera rule; only items of the query's identity wearing the clothes the
  query asks for (`Record.target_clothes_id`) match, the identity's other
  items stay in the ranking as non-matches.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from data_pipelines.records import MODALITIES, Record

PROTOCOLS = ("standard", "general", "cc", "cross_resolution", "sysu_all",
             "sysu_indoor", "v2i", "i2v", "text", "sketch", "text+sketch",
             "target_clothes")

RGB, IR = MODALITIES.index("rgb"), MODALITIES.index("ir")
# SYSU-MM01 visible gallery camids per protocol (cameras 1, 2, 4, 5 / 1, 2).
SYSU_GALLERY_CAMIDS = {"sysu_all": (0, 1, 3, 4), "sysu_indoor": (0, 1)}
# Camera-3 (camid 2) queries are not ranked against camera-2 (camid 1) items.
SYSU_EXCLUDED_PAIR = (2, 1)
# The modality every query of a protocol must have.
_QUERY_MODALITY = {"sysu_all": "ir", "sysu_indoor": "ir", "v2i": "rgb",
                   "i2v": "ir"}
_CAMERA_RULE = ("standard", "general", "cross_resolution", "cc")


class ProtocolArrays(NamedTuple):
  """Per-record labels as int32 arrays (a pytree).

  source: for queries, the gallery index of the item the query was derived
  from, -1 if none; -1 for gallery items.
  """

  pid: np.ndarray
  camid: np.ndarray
  clothes_id: np.ndarray
  target_clothes_id: np.ndarray
  modality: np.ndarray
  source: np.ndarray

  def take(self, index: np.ndarray) -> ProtocolArrays:
    """The arrays of the records at `index`."""
    return ProtocolArrays(*(np.asarray(a)[index] for a in self))


def _check_protocol(protocol: str) -> None:
  if protocol not in PROTOCOLS:
    raise ValueError(f"Unknown protocol {protocol!r}; expected one of "
                     f"{PROTOCOLS}.")


def _int_array(values) -> np.ndarray:
  return np.fromiter(values, dtype=np.int32)


def _source_index(query: Sequence[Record],
                  gallery: Sequence[Record]) -> np.ndarray:
  sources = [r.source for r in query]
  if not any(sources):
    return np.full(len(query), -1, np.int32)
  index = {r.path: i for i, r in reversed(list(enumerate(gallery))) if r.path}
  return _int_array(index.get(s, -1) if s else -1 for s in sources)


def encode_records(records: Sequence[Record],
                   source: np.ndarray | None = None) -> ProtocolArrays:
  """The protocol labels of `records` (source -1 unless given)."""
  modality_code = {m: i for i, m in enumerate(MODALITIES)}
  try:
    modality = _int_array(modality_code[r.modality] for r in records)
  except KeyError as e:
    raise ValueError(f"Unknown modality {e.args[0]!r}; expected one of "
                     f"{MODALITIES}.") from None
  return ProtocolArrays(
      pid=_int_array(r.pid for r in records),
      camid=_int_array(r.camid for r in records),
      clothes_id=_int_array(r.clothes_id for r in records),
      target_clothes_id=_int_array(r.target_clothes_id for r in records),
      modality=modality,
      source=(np.full(len(records), -1, np.int32) if source is None
              else source.astype(np.int32)))


def encode_protocol(query: Sequence[Record], gallery: Sequence[Record],
                    protocol: str) -> tuple[ProtocolArrays, ProtocolArrays]:
  """Query and gallery labels for `protocol`, checked against its rules."""
  _check_protocol(protocol)
  if not query or not gallery:
    raise ValueError("Evaluation needs at least one query and one gallery "
                     f"record; got {len(query)} and {len(gallery)}.")
  expected = _QUERY_MODALITY.get(protocol)
  if expected is not None:
    wrong = sorted({r.modality for r in query} - {expected})
    if wrong:
      raise ValueError(f"Protocol {protocol!r} takes {expected!r} queries; "
                       f"got modalities {wrong}.")
  if protocol == "cc" and any(r.clothes_id < 0
                              for r in (*query, *gallery)):
    raise ValueError("Protocol 'cc' needs a clothes_id >= 0 on every record.")
  if protocol == "target_clothes" and (
      any(r.target_clothes_id < 0 for r in query)
      or any(r.clothes_id < 0 for r in gallery)):
    raise ValueError("Protocol 'target_clothes' needs a target_clothes_id >= 0 "
                     "on every query and a clothes_id >= 0 on every gallery "
                     "record.")
  return (encode_records(query, _source_index(query, gallery)),
          encode_records(gallery))


def gallery_trials(protocol: str, gallery: ProtocolArrays, num_trials: int,
                   seed: int) -> list[np.ndarray | None]:
  """The gallery subsets to rank against, one per trial (None: all of it).

  SYSU-MM01 protocols draw one item per (pid, camid) among the visible items
  of the protocol's cameras: candidates are grouped by (pid, camid) in
  ascending order, members in gallery order; trial t draws
  u = np.random.default_rng((seed, t)).random(num_groups) and takes member
  floor(u[g] * size[g]) of group g. The subsets are in gallery order. A
  gallery that already holds one item per group gives a single trial.
  """
  _check_protocol(protocol)
  if protocol not in SYSU_GALLERY_CAMIDS:
    return [None]
  candidates = np.flatnonzero(
      (gallery.modality == RGB)
      & np.isin(gallery.camid, SYSU_GALLERY_CAMIDS[protocol]))
  if candidates.size == 0:
    raise ValueError(f"Protocol {protocol!r} found no visible gallery item of "
                     f"camids {SYSU_GALLERY_CAMIDS[protocol]}.")
  order = np.lexsort((candidates, gallery.camid[candidates],
                      gallery.pid[candidates]))
  members = candidates[order]
  keys = np.stack([gallery.pid[members], gallery.camid[members]], axis=1)
  _, starts, sizes = np.unique(keys, axis=0, return_index=True,
                               return_counts=True)
  if np.all(sizes == 1):
    return [np.sort(members)]
  trials = []
  for trial in range(num_trials):
    u = np.random.default_rng((seed, trial)).random(starts.size)
    picks = starts + np.floor(u * sizes).astype(np.int64)
    trials.append(np.sort(members[picks]))
  return trials


def restrict_to_subset(query: ProtocolArrays, gallery: ProtocolArrays,
                       subset: np.ndarray | None
                       ) -> tuple[ProtocolArrays, ProtocolArrays]:
  """Labels for ranking against `gallery[subset]` (query sources re-indexed)."""
  if subset is None:
    return query, gallery
  position = np.full(gallery.pid.shape[0], -1, np.int32)
  position[subset] = np.arange(subset.size, dtype=np.int32)
  source = np.where(query.source >= 0, position[query.source], -1)
  return query._replace(source=source.astype(np.int32)), gallery.take(subset)


def pair_masks(query: ProtocolArrays, gallery: ProtocolArrays,
               protocol: str) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(valid, positive) boolean [num_query, num_gallery] matrices; jittable."""
  _check_protocol(protocol)
  q = ProtocolArrays(*(jnp.asarray(a)[:, None] for a in query))
  g = ProtocolArrays(*(jnp.asarray(a)[None, :] for a in gallery))
  gallery_index = jnp.arange(g.pid.shape[1], dtype=jnp.int32)[None, :]
  same_id = (q.pid == g.pid) & (q.pid >= 0)
  valid = q.source != gallery_index
  if protocol in _CAMERA_RULE:
    hidden = q.camid == g.camid
    if protocol == "cc":
      hidden |= q.clothes_id == g.clothes_id
    valid &= ~(same_id & hidden)
  elif protocol in SYSU_GALLERY_CAMIDS:
    query_camid, gallery_camid = SYSU_EXCLUDED_PAIR
    cameras = jnp.asarray(SYSU_GALLERY_CAMIDS[protocol])
    valid &= (g.modality == RGB) & jnp.isin(g.camid, cameras)
    valid &= ~((q.camid == query_camid) & (g.camid == gallery_camid))
  elif protocol == "v2i":
    valid &= g.modality == IR
  elif protocol == "i2v":
    valid &= g.modality == RGB
  elif protocol == "target_clothes":
    same_id &= g.clothes_id == q.target_clothes_id
  return valid, valid & same_id
