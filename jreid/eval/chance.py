"""Metrics of a uniformly random ranking: the floor a model must beat.

For a query with N valid gallery items of which R are positives, a uniformly
random order of the N items gives, exactly:

- P(rank-k hit) = 1 - C(N - R, k) / C(N, k);
- E[AP] = H_N / N + (R - 1) (N - H_N) / (N (N - 1)), H_N the N-th harmonic
  number (from E[x_m x_n] of the positive indicators at positions m, n);
- E[INP] = E[R / L], L the position of the last positive:
  P(L = l) = C(l - 1, R - 1) / C(N, R), l = R..N.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from data_pipelines.records import Record
from jreid.eval import protocols, ranking
from jreid.eval.evaluate import DEFAULT_RANKS, average_trials, evaluated_queries


def _log_binomial(n, k):
  return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(
      n - k + 1)


def expected_hit_rate(num_items: np.ndarray, num_positives: np.ndarray,
                      k: int) -> np.ndarray:
  """P(a positive among the first k of a random order)."""
  n = np.asarray(num_items, np.float64)
  r = np.asarray(num_positives, np.float64)
  miss = np.ones_like(n)
  for j in range(k):
    miss *= np.where(j < n, np.maximum(n - r - j, 0.0) / np.maximum(n - j, 1),
                     0.0)
  return 1.0 - miss


def expected_average_precision(num_items: np.ndarray,
                               num_positives: np.ndarray) -> np.ndarray:
  """E[AP] of a random order."""
  n = np.asarray(num_items, np.int64)
  r = np.asarray(num_positives, np.float64)
  harmonic = np.cumsum(1.0 / np.arange(1, n.max() + 1))[n - 1]
  pairs = np.where(n > 1, (n - harmonic) / np.maximum(n * (n - 1.0), 1.0), 0.0)
  return harmonic / n + (r - 1.0) * pairs


def expected_inverse_negative_penalty(num_items: np.ndarray,
                                      num_positives: np.ndarray) -> np.ndarray:
  """E[R / L] of a random order, L the position of the last positive."""
  n = np.asarray(num_items, np.int64)
  r = np.asarray(num_positives, np.int64)
  out = np.empty(n.shape, np.float64)
  for positives in np.unique(r):
    rows = r == positives
    lengths = np.arange(positives, n[rows].max() + 1, dtype=np.float64)
    # log of C(l - 1, R - 1) / l, summed over l = R..N by a running logsumexp.
    log_terms = (_log_binomial(lengths - 1, positives - 1.0)
                 - np.log(lengths))
    log_sums = np.logaddexp.accumulate(log_terms)[n[rows] - positives]
    out[rows] = positives * np.exp(
        log_sums - _log_binomial(n[rows].astype(np.float64), positives))
  return out


def chance_metrics(query_records: Sequence[Record],
                   gallery_records: Sequence[Record], protocol: str,
                   ranks: Sequence[int] = DEFAULT_RANKS, num_trials: int = 10,
                   seed: int = 0, block_size: int | None = None
                   ) -> dict[str, float | int]:
  """Expected mAP, mINP and rank-k of a uniformly random ranking.

  Same protocol, queries and averaging as `evaluate`: the valid items and
  positives of every query come from the protocol's masks.
  """
  query_labels, gallery_labels = protocols.encode_protocol(
      query_records, gallery_records, protocol)
  summaries = []
  for subset in protocols.gallery_trials(protocol, gallery_labels, num_trials,
                                         seed):
    query, gallery = (jax.tree.map(jnp.asarray, labels)
                      for labels in protocols.restrict_to_subset(
                          query_labels, gallery_labels, subset))
    num_valid, num_positives = jax.device_get(
        ranking.count_valid_and_positive(
            query, gallery, protocol=protocol,
            block_size=block_size or ranking.default_block_size(
                query.pid.shape[0], gallery.pid.shape[0],
                ranking.platform_of(query.pid))))
    evaluated = evaluated_queries(num_positives)
    n, r = num_valid[evaluated], num_positives[evaluated]
    summaries.append({
        "mAP": np.mean(expected_average_precision(n, r)),
        "mINP": np.mean(expected_inverse_negative_penalty(n, r)),
        **{f"rank{k}": np.mean(expected_hit_rate(n, r, k)) for k in ranks},
        "num_queries_evaluated": int(evaluated.sum())})
  return average_trials(summaries)
