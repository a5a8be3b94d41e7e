"""evaluate(): features and records in, CMC / mAP / mINP and top-k lists out."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines.records import Record
from jreid.eval import protocols, ranking, rerank as rerank_lib

DEFAULT_RANKS = (1, 5, 10, 20)


def evaluated_queries(num_positives) -> np.ndarray:
  """Queries with a valid match: the others are skipped (an error if all)."""
  evaluated = np.asarray(num_positives) > 0
  if not evaluated.any():
    raise ValueError("No query has a valid match in the gallery under this "
                     "protocol: check the query and gallery records.")
  return evaluated


def average_trials(summaries: Sequence[dict]) -> dict[str, float | int]:
  """Metrics averaged over gallery trials; the query count of the first."""
  result = {key: float(np.mean([s[key] for s in summaries]))
            for key in summaries[0]}
  result["num_queries_evaluated"] = summaries[0]["num_queries_evaluated"]
  return result


def summarize(stats: ranking.QueryStats,
              ranks: Sequence[int]) -> dict[str, float | int]:
  """mAP, mINP and rank-k accuracy over the queries that have a positive."""
  evaluated = evaluated_queries(stats.num_positives)
  first = np.asarray(stats.first_positive)[evaluated]

  def mean(values):
    return float(np.mean(np.asarray(values, np.float64)[evaluated]))

  return {"mAP": mean(stats.average_precision),
          "mINP": mean(stats.inverse_negative_penalty),
          **{f"rank{k}": float(np.mean(first < k)) for k in ranks},
          "num_queries_evaluated": int(evaluated.sum())}


def _rank_trial(query_features, gallery_features, query_labels,
                gallery_labels, subset, protocol, metric, block_size, topk,
                query_expansion, rerank):
  """QueryStats of one gallery trial, top-k indices into the full gallery."""
  query_labels, gallery_labels = protocols.restrict_to_subset(
      query_labels, gallery_labels, subset)
  gallery = (gallery_features if subset is None
             else jnp.take(gallery_features, jnp.asarray(subset), axis=0))
  queries = query_features
  if query_expansion:
    queries = rerank_lib.average_query_expansion(
        queries, gallery, k=query_expansion, metric=metric)
  num_query, num_gallery = queries.shape[0], gallery.shape[0]
  platform = ranking.platform_of(queries)
  candidates = ranking.same_identity_candidates(query_labels, gallery_labels)
  options = dict(
      protocol=protocol,
      block_size=block_size or ranking.default_block_size(
          num_query, num_gallery, platform),
      topk=min(topk, num_gallery),
      slots_per_step=ranking.default_slots_per_step(platform))
  if rerank:
    scores = -rerank_lib.k_reciprocal_distances(queries, gallery,
                                                metric=metric)
    stats = ranking.rank_scores(scores, query_labels, gallery_labels,
                                candidates, **options)
  else:
    stats = ranking.rank_features(queries, gallery, query_labels,
                                  gallery_labels, candidates, metric=metric,
                                  **options)
  stats = jax.device_get(stats)
  index = stats.topk_index
  if subset is not None:
    index = np.where(index >= 0, subset[np.maximum(index, 0)], -1)
  missing = topk - index.shape[1]
  return stats._replace(
      topk_index=np.pad(index, ((0, 0), (0, missing)), constant_values=-1),
      topk_positive=np.pad(stats.topk_positive, ((0, 0), (0, missing))))


def evaluate(query_features: jax.Array, gallery_features: jax.Array,
             query_records: Sequence[Record],
             gallery_records: Sequence[Record], protocol: str,
             metric: str = "cosine",
             ranks: Sequence[int] = DEFAULT_RANKS, return_topk: int = 10,
             block_size: int | None = None, query_expansion: int = 0,
             rerank: bool = False, num_trials: int = 10,
             seed: int = 0) -> dict[str, Any]:
  """Ranks the gallery for every query under `protocol` and scores it.

  Equal scores rank by ascending gallery index. Queries without a valid
  match are skipped (an error if none has one).

  Args:
    query_features, gallery_features: [Q, D] and [G, D] (any float dtype).
    query_records, gallery_records: the records the rows belong to.
    protocol: one of `protocols.PROTOCOLS`.
    metric: 'cosine' or 'euclidean'.
    ranks: the k of the reported rank-k accuracies (CMC).
    return_topk: length of the returned ranked lists.
    block_size: queries per compiled block (default: about
      `ranking.BLOCK_ELEMENTS` scores, 2**23 on CPUs, 2**29 elsewhere).
    query_expansion: k > 0 averages each query with its k nearest gallery
      items first (`rerank.average_query_expansion`).
    rerank: rank by k-reciprocal re-ranked distances (k1=20, k2=6,
      lambda=0.3).
    num_trials, seed: gallery trials of the SYSU-MM01 protocols.

  Returns:
    'mAP', 'mINP', 'rank<k>' (fractions in [0, 1], averaged over the queries
    that have a valid match, then over trials), 'num_queries_evaluated' (the
    same in every trial), 'topk_indices' [Q, return_topk] gallery indices in
    rank order (-1 past the valid items; first trial) and 'topk_matches'
    [Q, return_topk] bool.
  """
  if len(query_features) != len(query_records) or len(
      gallery_features) != len(gallery_records):
    raise ValueError(
        f"Got {len(query_features)} query and {len(gallery_features)} gallery "
        f"features for {len(query_records)} query and {len(gallery_records)} "
        "gallery records.")
  query_labels, gallery_labels = protocols.encode_protocol(
      query_records, gallery_records, protocol)
  trials = protocols.gallery_trials(protocol, gallery_labels, num_trials, seed)
  query_features = jnp.asarray(query_features)
  gallery_features = jnp.asarray(gallery_features)
  stats = [_rank_trial(query_features, gallery_features, query_labels,
                       gallery_labels, subset, protocol, metric, block_size,
                       return_topk, query_expansion, rerank)
           for subset in trials]
  result = average_trials([summarize(s, ranks) for s in stats])
  result["topk_indices"] = stats[0].topk_index
  result["topk_matches"] = stats[0].topk_positive
  return result
