"""Similarity and per-query ranking statistics on the accelerator.

Queries go through one compiled kernel of static block shape (`lax.map` over
padded blocks), so memory stays bounded by block_size x num_gallery.

Ties: among equal scores the lower gallery index ranks first (a stable sort
by descending score), here and in the NumPy reference.

Two ways to the rank positions of a query's positives, chosen per call:
'count' takes the query's positives (at most `max_positives`) and counts, for
each, the valid items that rank ahead of it (block x max_positives x gallery
comparisons, no sort); 'sort' sorts every row (block x gallery x log gallery)
and suits queries with many positives.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jreid.eval.protocols import ProtocolArrays, pair_masks

METRICS = ("cosine", "euclidean")
RANKING_METHODS = ("count", "sort")
# 'count' is used while a query can have at most this many positives.
COUNT_METHOD_MAX_POSITIVES = 64
# Default block: about this many (query, gallery) scores per block.
BLOCK_ELEMENTS = 1 << 25


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
    norm = jnp.linalg.norm(x32, axis=-1, keepdims=True)
    x32 = x32 / jnp.maximum(norm, 1e-12)
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


def _stats_by_count(scores, valid, positive, num_positives, max_positives):
  """(AP, INP, first position) from counting items ahead of each positive."""
  best, best_index = lax.top_k(jnp.where(positive, scores, -jnp.inf),
                               max_positives)
  item = jnp.arange(scores.shape[1], dtype=jnp.int32)
  s, b = scores[:, None, :], best[:, :, None]
  ahead = (s > b) | ((s == b) & (item < best_index[:, :, None]))
  position = jnp.sum(ahead & valid[:, None, :], axis=-1, dtype=jnp.int32)
  slot = jnp.arange(max_positives, dtype=jnp.int32)
  precision = (slot + 1) / (position + 1).astype(jnp.float32)
  is_positive = slot < num_positives[:, None]
  ap = jnp.sum(jnp.where(is_positive, precision, 0.0), axis=1)
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


def _query_stats(scores, valid, positive, max_positives, topk, method):
  num_positives = jnp.sum(positive, axis=1, dtype=jnp.int32)
  if method == "count":
    ap, last, first = _stats_by_count(scores, valid, positive, num_positives,
                                      max_positives)
  else:
    ap, last, first = _stats_by_sort(scores, valid, positive)
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
  return jax.tree.map(lambda y: y.reshape(-1, *y.shape[2:])[:num_queries], out)


# Padded queries have no identity and no source, so they have no positives.
_LABEL_PAD = ProtocolArrays(-1, -1, -1, -1, -1)


def _device_labels(labels: ProtocolArrays) -> ProtocolArrays:
  return ProtocolArrays(*(jnp.asarray(a, jnp.int32) for a in labels))


@functools.partial(jax.jit, static_argnames=(
    "protocol", "metric", "block_size", "max_positives", "topk", "method"))
def rank_features(query_features: jax.Array, gallery_features: jax.Array,
                  query_labels: ProtocolArrays, gallery_labels: ProtocolArrays,
                  *, protocol: str, metric: str, block_size: int,
                  max_positives: int, topk: int, method: str) -> QueryStats:
  """Per-query statistics of ranking the gallery by feature similarity."""
  gallery = prepare_features(gallery_features, metric)
  labels = _device_labels(query_labels)

  def block(inputs):
    features, block_labels = inputs
    scores = prepared_scores(prepare_features(features, metric), gallery,
                             metric)
    valid, positive = pair_masks(block_labels, gallery_labels, protocol)
    return _query_stats(scores, valid, positive, max_positives, topk, method)

  return _map_query_blocks(block, block_size, (query_features, labels),
                           (0, _LABEL_PAD))


@functools.partial(jax.jit, static_argnames=(
    "protocol", "block_size", "max_positives", "topk", "method"))
def rank_scores(scores: jax.Array, query_labels: ProtocolArrays,
                gallery_labels: ProtocolArrays, *, protocol: str,
                block_size: int, max_positives: int, topk: int,
                method: str) -> QueryStats:
  """Per-query statistics of a given [Q, G] score matrix (higher is closer)."""
  labels = _device_labels(query_labels)

  def block(inputs):
    block_scores, block_labels = inputs
    valid, positive = pair_masks(block_labels, gallery_labels, protocol)
    return _query_stats(block_scores.astype(jnp.float32), valid, positive,
                        max_positives, topk, method)

  return _map_query_blocks(block, block_size, (scores, labels), (0, _LABEL_PAD))


@functools.partial(jax.jit, static_argnames=("protocol", "block_size"))
def count_candidates(query_labels: ProtocolArrays,
                     gallery_labels: ProtocolArrays, *, protocol: str,
                     block_size: int) -> tuple[jax.Array, jax.Array]:
  """Per query: (number of valid gallery items, number of positives)."""
  labels = _device_labels(query_labels)

  def block(block_labels):
    valid, positive = pair_masks(block_labels, gallery_labels, protocol)
    return (jnp.sum(valid, axis=1, dtype=jnp.int32),
            jnp.sum(positive, axis=1, dtype=jnp.int32))

  return _map_query_blocks(block, block_size, labels, _LABEL_PAD)


def default_block_size(num_queries: int, num_gallery: int) -> int:
  """Queries per block: about BLOCK_ELEMENTS scores, blocks of equal size."""
  largest = max(1, min(num_queries, BLOCK_ELEMENTS // max(num_gallery, 1)))
  num_blocks = -(-num_queries // largest)
  return -(-num_queries // num_blocks)


def positive_bound(query_labels: ProtocolArrays,
                   gallery_labels: ProtocolArrays) -> int:
  """An upper bound on any query's positives (a multiple of 8, <= gallery)."""
  gallery_pid = np.asarray(gallery_labels.pid)
  query_pid = np.asarray(query_labels.pid)
  known = gallery_pid[gallery_pid >= 0]
  if known.size == 0 or query_pid.max(initial=-1) < 0:
    most = 0
  else:
    counts = np.bincount(known, minlength=query_pid.max() + 1)
    most = int(counts[query_pid[query_pid >= 0]].max(initial=0))
  return int(min(max(8, -(-most // 8) * 8), gallery_pid.size))


def choose_method(max_positives: int) -> str:
  """'count' for few positives per query, else 'sort'."""
  return "count" if max_positives <= COUNT_METHOD_MAX_POSITIVES else "sort"
