"""Similarity and per-query ranking statistics on the accelerator.

Queries go through one compiled kernel of static block shape (`lax.map` over
padded blocks), so memory stays bounded by block_size x num_gallery.

Ties: among equal scores the lower gallery index ranks first (a stable sort
by descending score), here and in the NumPy reference.

Two ways to the rank positions of a query's positives, chosen per call:
'count' gathers the query's positives from a host-made list of the gallery
items of its identity (`same_identity_candidates`, P per query) and counts,
for each, the valid items that rank ahead of it (block x P x gallery
comparisons, no sort); 'sort' sorts every row (block x gallery x log gallery)
and serves identities with more than COUNT_METHOD_MAX_POSITIVES items.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jreid.eval.protocols import ProtocolArrays, pair_masks
from jreid.ops import l2_normalize

METRICS = ("cosine", "euclidean")
# 'count' is used while no identity has more gallery items than this (on an
# H200 and on a CPU it beats 'sort' up to several hundred).
COUNT_METHOD_MAX_POSITIVES = 256
# Per platform of the data ("default": the others). Scores per block:
BLOCK_ELEMENTS = {"cpu": 1 << 23, "default": 1 << 29}
# Positives counted per pass over a block's scores (None: all; else a
# divisor of 8).
COUNT_SLOTS_PER_STEP = {"cpu": 4, "default": None}


def platform_of(x: jax.Array) -> str:
  """'cpu', 'gpu' or 'tpu': where `x` lives."""
  return next(iter(x.devices())).platform


def _platform_setting(table: dict, platform: str):
  return table.get(platform, table["default"])


def default_slots_per_step(platform: str) -> int | None:
  """Positives counted per pass on `platform` (None: all)."""
  return _platform_setting(COUNT_SLOTS_PER_STEP, platform)


class QueryStats(NamedTuple):
  """Per-query results; positions are 0-based among the query's valid items."""

  average_precision: jax.Array  # [Q] float32, 0 without positives
  inverse_negative_penalty: jax.Array  # [Q] float32, 0 without positives
  first_positive: jax.Array  # [Q] int32, position of the best positive
  num_positives: jax.Array  # [Q] int32
  topk_index: jax.Array  # [Q, k] int32 gallery indices, -1 past the valid ones
  topk_positive: jax.Array  # [Q, k] bool


def _compute_dtype(x: jax.Array) -> jnp.dtype:
  return x.dtype if x.dtype in (jnp.bfloat16, jnp.float16) else jnp.float32


def prepare_features(x: jax.Array, metric: str) -> tuple[jax.Array, jax.Array]:
  """(features to multiply, squared norms): L2-normalised for 'cosine'."""
  if metric not in METRICS:
    raise ValueError(f"Unknown metric {metric!r}; expected one of {METRICS}.")
  x32 = jnp.asarray(x, jnp.float32)
  if metric == "cosine":
    x32 = l2_normalize(x32)
  return x32.astype(_compute_dtype(jnp.asarray(x))), jnp.sum(x32 * x32, -1)


def prepared_scores(query: tuple[jax.Array, jax.Array],
                    gallery: tuple[jax.Array, jax.Array],
                    metric: str) -> jax.Array:
  """Scores (higher is closer) between `prepare_features` outputs.

  cosine: the cosine similarity; euclidean: minus the squared distance.
  """
  (q, q_sq), (g, g_sq) = query, gallery
  dot = jnp.matmul(q, g.T, precision=lax.Precision.HIGHEST,
                   preferred_element_type=jnp.float32)
  if metric == "cosine":
    return dot
  return 2.0 * dot - q_sq[:, None] - g_sq[None, :]


def similarity(query: jax.Array, gallery: jax.Array,
               metric: str = "cosine") -> jax.Array:
  """[Q, G] scores, higher is closer (see `prepared_scores`)."""
  return prepared_scores(prepare_features(query, metric),
                         prepare_features(gallery, metric), metric)


def _count_ahead(ranked, score, index, slots_per_step):
  """[B, P] number of items of `ranked` [B, G] ahead of each (score, index).

  Slots go `slots_per_step` at a time (None: all) with the gallery axis
  reduced in the middle: each score is read once per step.
  """
  num_queries, num_slots = score.shape
  chunk = slots_per_step or num_slots
  item = jnp.arange(ranked.shape[1], dtype=jnp.int32)[None, :, None]
  values = ranked[:, :, None]

  def count(slots):
    score, index = slots[0][:, None, :], slots[1][:, None, :]
    ahead = (values > score) | ((values == score) & (item < index))
    return jnp.sum(ahead, axis=1, dtype=jnp.int32)

  def chunks(x):
    return x.reshape(num_queries, -1, chunk).transpose(1, 0, 2)

  out = lax.map(count, (chunks(score), chunks(index)))
  return out.transpose(1, 0, 2).reshape(num_queries, num_slots)


def _stats_by_count(scores, valid, positive, num_positives, candidates,
                    slots_per_step):
  """(AP, INP, first position) from counting items ahead of each positive.

  candidates: [B, P] gallery indices of each query's identity (-1 padded).
  """
  safe = jnp.maximum(candidates, 0)
  is_positive = jnp.take_along_axis(positive, safe, axis=1) & (candidates >= 0)
  candidate_scores = jnp.take_along_axis(scores, safe, axis=1)
  # Positives first, best first: descending score, then ascending index.
  _, negated, best_index = lax.sort(
      (jnp.where(is_positive, 0, 1),
       -jnp.where(candidate_scores == 0, 0.0, candidate_scores), candidates),
      dimension=1, is_stable=True, num_keys=3)
  position = _count_ahead(jnp.where(valid, scores, -jnp.inf), -negated,
                          best_index, slots_per_step)
  slot = jnp.arange(candidates.shape[1], dtype=jnp.int32)
  precision = (slot + 1) / (position + 1).astype(jnp.float32)
  ap = jnp.sum(jnp.where(slot < num_positives[:, None], precision, 0.0), axis=1)
  last = jnp.take_along_axis(
      position, jnp.maximum(num_positives - 1, 0)[:, None], axis=1)[:, 0]
  return ap, last, position[:, 0]


def _stats_by_sort(scores, valid, positive):
  """(AP, INP, first position) from a stable descending sort of each row."""
  key = -jnp.where(scores == 0, 0.0, scores)  # one zero for all signs
  _, valid, positive = lax.sort((key, valid, positive), dimension=1,
                                is_stable=True, num_keys=1)
  position = jnp.cumsum(valid, axis=1, dtype=jnp.int32)  # 1-based
  hits = jnp.cumsum(positive, axis=1, dtype=jnp.int32)
  precision = hits / position.astype(jnp.float32)
  ap = jnp.sum(jnp.where(positive, precision, 0.0), axis=1)
  last = jnp.max(jnp.where(positive, position, 1), axis=1) - 1
  first = jnp.min(jnp.where(positive, position, scores.shape[1] + 1), axis=1)
  return ap, last, first - 1


def _query_stats(scores, valid, positive, candidates, topk, slots_per_step):
  num_positives = jnp.sum(positive, axis=1, dtype=jnp.int32)
  if candidates is None:
    ap, last, first = _stats_by_sort(scores, valid, positive)
  else:
    ap, last, first = _stats_by_count(scores, valid, positive, num_positives,
                                      candidates, slots_per_step)
  denominator = jnp.maximum(num_positives, 1).astype(jnp.float32)
  inp = jnp.where(num_positives > 0,
                  num_positives / (last + 1).astype(jnp.float32), 0.0)
  _, top = lax.top_k(jnp.where(valid, scores, -jnp.inf), topk)
  top_valid = jnp.take_along_axis(valid, top, axis=1)
  return QueryStats(
      average_precision=ap / denominator,
      inverse_negative_penalty=inp,
      first_positive=first,
      num_positives=num_positives,
      topk_index=jnp.where(top_valid, top, -1),
      topk_positive=jnp.take_along_axis(positive, top, axis=1) & top_valid)


def _map_query_blocks(fn: Callable, block_size: int, per_query, pad_values):
  """Applies `fn` to blocks of `block_size` queries; results per query."""
  num_queries = jax.tree.leaves(per_query)[0].shape[0]
  num_blocks = -(-num_queries // block_size)
  pad = num_blocks * block_size - num_queries

  def blocks(x, value):
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), constant_values=value)
    return x.reshape(num_blocks, block_size, *x.shape[1:])

  out = lax.map(fn, jax.tree.map(blocks, per_query, pad_values))
  return jax.tree.map(
      lambda y: y.reshape(num_blocks * block_size, *y.shape[2:])[:num_queries],
      out)


# Padded queries have no identity and no source, so they have no positives.
_LABEL_PAD = ProtocolArrays(-1, -1, -1, -1, -1, -1)


def _pads(candidates):
  """Padding of (features or scores, labels, candidates)."""
  return 0, _LABEL_PAD, None if candidates is None else -1


def _device_labels(labels: ProtocolArrays) -> ProtocolArrays:
  return ProtocolArrays(*(jnp.asarray(a, jnp.int32) for a in labels))


@functools.partial(jax.jit, static_argnames=(
    "protocol", "metric", "block_size", "topk", "slots_per_step"))
def rank_features(query_features: jax.Array, gallery_features: jax.Array,
                  query_labels: ProtocolArrays, gallery_labels: ProtocolArrays,
                  candidates: jax.Array | None, *, protocol: str, metric: str,
                  block_size: int, topk: int,
                  slots_per_step: int | None) -> QueryStats:
  """Per-query statistics of ranking the gallery by feature similarity.

  candidates: `same_identity_candidates` ('count'), or None ('sort').
  block_size, slots_per_step: see `default_block_size`,
  `default_slots_per_step`.
  """
  gallery = prepare_features(gallery_features, metric)

  def block(inputs):
    features, block_labels, block_candidates = inputs
    scores = prepared_scores(prepare_features(features, metric), gallery,
                             metric)
    valid, positive = pair_masks(block_labels, gallery_labels, protocol)
    return _query_stats(scores, valid, positive, block_candidates, topk,
                        slots_per_step)

  return _map_query_blocks(
      block, block_size,
      (query_features, _device_labels(query_labels), candidates),
      _pads(candidates))


@functools.partial(jax.jit, static_argnames=(
    "protocol", "block_size", "topk", "slots_per_step"))
def rank_scores(scores: jax.Array, query_labels: ProtocolArrays,
                gallery_labels: ProtocolArrays, candidates: jax.Array | None,
                *, protocol: str, block_size: int, topk: int,
                slots_per_step: int | None) -> QueryStats:
  """Per-query statistics of a [Q, G] score matrix (higher is closer)."""

  def block(inputs):
    block_scores, block_labels, block_candidates = inputs
    valid, positive = pair_masks(block_labels, gallery_labels, protocol)
    return _query_stats(block_scores.astype(jnp.float32), valid, positive,
                        block_candidates, topk, slots_per_step)

  return _map_query_blocks(
      block, block_size, (scores, _device_labels(query_labels), candidates),
      _pads(candidates))


@functools.partial(jax.jit, static_argnames=("protocol", "block_size"))
def count_valid_and_positive(query_labels: ProtocolArrays,
                             gallery_labels: ProtocolArrays, *, protocol: str,
                             block_size: int) -> tuple[jax.Array, jax.Array]:
  """Per query: (number of valid gallery items, number of positives)."""
  labels = _device_labels(query_labels)

  def block(block_labels):
    valid, positive = pair_masks(block_labels, gallery_labels, protocol)
    return (jnp.sum(valid, axis=1, dtype=jnp.int32),
            jnp.sum(positive, axis=1, dtype=jnp.int32))

  return _map_query_blocks(block, block_size, labels, _LABEL_PAD)


def default_block_size(num_queries: int, num_gallery: int,
                       platform: str) -> int:
  """Queries per block: about BLOCK_ELEMENTS scores, blocks of equal size."""
  elements = _platform_setting(BLOCK_ELEMENTS, platform)
  largest = max(1, min(num_queries, elements // max(num_gallery, 1)))
  num_blocks = -(-num_queries // largest)
  return -(-num_queries // num_blocks)


def same_identity_candidates(query_labels: ProtocolArrays,
                             gallery_labels: ProtocolArrays
                             ) -> np.ndarray | None:
  """[Q, P] gallery indices of each query's identity, -1 padded (host side).

  P is the largest such count rounded up to a multiple of 8. None when it
  exceeds COUNT_METHOD_MAX_POSITIVES: then every row is sorted instead.
  """
  gallery_pid = np.asarray(gallery_labels.pid)
  query_pid = np.asarray(query_labels.pid)
  order = np.argsort(gallery_pid, kind="stable")
  sorted_pid = gallery_pid[order]
  start = np.searchsorted(sorted_pid, query_pid, side="left")
  count = np.where(query_pid >= 0,
                   np.searchsorted(sorted_pid, query_pid, side="right") - start,
                   0)
  most = int(count.max(initial=0))
  if most > COUNT_METHOD_MAX_POSITIVES:
    return None
  slot = np.arange(max(8, -(-most // 8) * 8))
  index = order[np.minimum(start[:, None] + slot, order.size - 1)]
  return np.where(slot < count[:, None], index, -1).astype(np.int32)
