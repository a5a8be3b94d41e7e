"""Chance-level metrics: exact formulas against Monte-Carlo simulation."""

import numpy as np
import pytest

import eval_reference as ref
from jreid.eval import chance, chance_metrics


def _simulate(num_items, num_positives, trials, rng):
  """Mean AP, INP and rank-k hits of random orders (NumPy, per trial)."""
  ap, inp, hits = [], [], {k: [] for k in (1, 5, 10)}
  for _ in range(trials):
    order = rng.permutation(num_items) < num_positives  # positives' places
    positions = np.flatnonzero(order)
    ap.append(np.mean(np.arange(1, num_positives + 1) / (positions + 1)))
    inp.append(num_positives / (positions[-1] + 1))
    for k in hits:
      hits[k].append(positions[0] < k)
  return np.mean(ap), np.mean(inp), {k: np.mean(v) for k, v in hits.items()}


@pytest.mark.parametrize("num_items,num_positives",
                         [(1, 1), (7, 1), (7, 7), (30, 4), (200, 12)])
def test_eval_chance_formulas_match_simulation(num_items, num_positives):
  rng = np.random.default_rng(num_items)
  ap, inp, hits = _simulate(num_items, num_positives, 20000, rng)
  n, r = np.array([num_items]), np.array([num_positives])
  assert chance.expected_average_precision(n, r)[0] == pytest.approx(
      ap, abs=4e-3)
  assert chance.expected_inverse_negative_penalty(n, r)[0] == pytest.approx(
      inp, abs=4e-3)
  for k, rate in hits.items():
    assert chance.expected_hit_rate(n, r, k)[0] == pytest.approx(rate,
                                                                 abs=1.2e-2)


def test_eval_chance_formulas_small_cases_exactly():
  n, r = np.array([2, 3, 3]), np.array([1, 1, 2])
  # N=2, R=1: AP is 1 or 1/2; N=3, R=1: (1 + 1/2 + 1/3) / 3;
  # N=3, R=2: orders 110, 101, 011 give AP 1, (1 + 2/3)/2, (1/2 + 2/3)/2.
  np.testing.assert_allclose(chance.expected_average_precision(n, r),
                             [0.75, 11 / 18, (1 + 5 / 6 + 7 / 12) / 3])
  # INP: N=3, R=2: last positive at 2 (p=1/3) or 3 (p=2/3).
  np.testing.assert_allclose(
      chance.expected_inverse_negative_penalty(n, r),
      [0.75, 11 / 18, (1 / 3) * 1 + (2 / 3) * (2 / 3)])
  np.testing.assert_allclose(chance.expected_hit_rate(n, r, 2),
                             [1.0, 2 / 3, 1.0])


@pytest.mark.parametrize("protocol", ["standard", "sysu_indoor"])
def test_eval_chance_metrics_match_random_rankings(protocol):
  rng = np.random.default_rng(4)
  query, gallery = ref.random_case(rng, protocol, num_query=20,
                                   num_gallery=60, num_ids=5)
  got = chance_metrics(query, gallery, protocol, ranks=(1, 5), num_trials=2)
  subsets = (ref.sysu_trials(gallery, protocol, 2) if protocol != "standard"
             else [list(range(len(gallery)))])
  runs = []
  for _ in range(300):
    for subset in subsets:
      scores = rng.random((len(query), len(subset)))
      runs.append(ref.metrics_from_scores(
          scores, query, [gallery[j] for j in subset], protocol, (1, 5))[0])
  for key in ("mAP", "mINP", "rank1", "rank5"):
    assert got[key] == pytest.approx(np.mean([r[key] for r in runs]),
                                     abs=1.5e-2), key
  assert got["num_queries_evaluated"] == runs[0]["num_queries_evaluated"]
