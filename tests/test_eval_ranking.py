"""jreid.eval.evaluate against the NumPy reference, for every protocol."""

import numpy as np
import pytest

import eval_reference as ref
from jreid.eval import evaluate, protocols, ranking

RANKS = (1, 5, 10, 20)


def _compare(protocol, metric, features, seed, **kwargs):
  rng = np.random.default_rng(seed)
  query, gallery = ref.random_case(rng, protocol)
  if features == "tied":
    qf, gf = ref.tied_features(rng, len(query)), ref.tied_features(
        rng, len(gallery))
  else:
    qf = rng.normal(size=(len(query), 24)).astype(np.float32)
    gf = rng.normal(size=(len(gallery), 24)).astype(np.float32)
  got = evaluate(qf, gf, query, gallery, protocol, metric=metric, ranks=RANKS,
                 return_topk=10, num_trials=3, **kwargs)
  want, top_index, top_match = ref.evaluate(qf, gf, query, gallery, protocol,
                                            metric, RANKS, 10, num_trials=3)
  for key, value in want.items():
    assert got[key] == pytest.approx(value, abs=1e-6), key
  np.testing.assert_array_equal(got["topk_indices"], top_index)
  np.testing.assert_array_equal(got["topk_matches"], top_match)
  return got


@pytest.mark.parametrize("protocol", protocols.PROTOCOLS)
def test_eval_protocol_with_ties_matches_reference(protocol):
  metric = "euclidean" if len(protocol) % 2 else "cosine"
  got = _compare(protocol, metric, "tied", seed=len(protocol))
  assert 0 < got["num_queries_evaluated"] < 40  # some queries are skipped


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_eval_continuous_features_match_reference(metric):
  _compare("standard", metric, "normal", seed=1)


@pytest.mark.parametrize("protocol", ["standard", "sysu_all", "sketch"])
def test_eval_sort_method_matches_reference(protocol, monkeypatch):
  monkeypatch.setattr(ranking, "COUNT_METHOD_MAX_POSITIVES", 0)
  _compare(protocol, "cosine", "tied", seed=7)


def test_eval_block_size_does_not_change_results():
  _compare("cc", "cosine", "tied", seed=3, block_size=7)


def test_eval_bfloat16_features_run():
  rng = np.random.default_rng(0)
  query, gallery = ref.random_case(rng, "standard")
  qf, gf = ref.tied_features(rng, len(query)), ref.tied_features(
      rng, len(gallery))
  got = evaluate(qf.astype("bfloat16"), gf.astype("bfloat16"), query, gallery,
                 "standard")
  want, _, _ = ref.evaluate(qf, gf, query, gallery, "standard")
  assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-6)


@pytest.mark.parametrize("chunk", [None, 8])
def test_eval_count_chunks_do_not_change_results(chunk, monkeypatch):
  monkeypatch.setitem(ranking.COUNT_SLOTS_PER_STEP, "cpu", chunk)
  _compare("standard", "cosine", "tied", seed=11)


def test_eval_topk_longer_than_the_valid_list_is_padded():
  rng = np.random.default_rng(6)
  query, gallery = ref.random_case(rng, "standard", num_query=6,
                                   num_gallery=9, num_ids=3)
  qf, gf = rng.normal(size=(6, 8)), rng.normal(size=(9, 8))
  got = evaluate(qf, gf, query, gallery, "standard", return_topk=12)
  _, top_index, top_match = ref.evaluate(qf, gf, query, gallery, "standard",
                                         topk=12)
  assert (got["topk_indices"][:, -3:] == -1).all()
  np.testing.assert_array_equal(got["topk_indices"], top_index)
  np.testing.assert_array_equal(got["topk_matches"], top_match)
