"""k-reciprocal re-ranking and query expansion against the NumPy reference."""

import numpy as np
import pytest

import eval_reference as ref
from jreid.eval import average_query_expansion, evaluate, k_reciprocal_distances


@pytest.mark.parametrize("metric,k1,k2", [("cosine", 20, 6),
                                          ("euclidean", 5, 1),
                                          ("cosine", 7, 3)])
def test_eval_rerank_matches_reference(metric, k1, k2):
  rng = np.random.default_rng(k1)
  query = ref.tied_features(rng, 30, pool=40)
  gallery = ref.tied_features(rng, 90, pool=40)
  got = k_reciprocal_distances(query, gallery, k1=k1, k2=k2, metric=metric)
  want = ref.k_reciprocal_distances(query, gallery, k1, k2, 0.3, metric)
  np.testing.assert_allclose(got, want, atol=2e-6)


def test_eval_rerank_on_clustered_features_improves_map():
  rng = np.random.default_rng(0)
  query, gallery = ref.random_case(rng, "standard", num_query=30,
                                   num_gallery=120, num_ids=8)
  centres = rng.normal(size=(12, 16))
  qf = centres[[r.pid for r in query]] + rng.normal(size=(30, 16))
  gf = centres[[r.pid for r in gallery]] + rng.normal(size=(120, 16))
  plain = evaluate(qf, gf, query, gallery, "standard")
  reranked = evaluate(qf, gf, query, gallery, "standard", rerank=True)
  scores = -np.asarray(k_reciprocal_distances(qf, gf))
  want, top_index, _ = ref.metrics_from_scores(scores, query, gallery,
                                               "standard")
  assert reranked["mAP"] == pytest.approx(want["mAP"], abs=1e-6)
  assert reranked["rank1"] == pytest.approx(want["rank1"], abs=1e-6)
  np.testing.assert_array_equal(reranked["topk_indices"], top_index)
  assert reranked["mAP"] > plain["mAP"]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_eval_query_expansion_matches_reference(metric):
  rng = np.random.default_rng(5)
  query = ref.tied_features(rng, 20, pool=8)
  gallery = ref.tied_features(rng, 60, pool=8)
  got = average_query_expansion(query, gallery, k=4, metric=metric)
  want = ref.average_query_expansion(query, gallery, 4, metric)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_eval_query_expansion_in_evaluate_matches_reference():
  rng = np.random.default_rng(2)
  query, gallery = ref.random_case(rng, "standard")
  qf = rng.normal(size=(len(query), 16)).astype(np.float32)
  gf = rng.normal(size=(len(gallery), 16)).astype(np.float32)
  got = evaluate(qf, gf, query, gallery, "standard", query_expansion=3)
  expanded = ref.average_query_expansion(qf, gf, 3, "cosine")
  want, _, _ = ref.evaluate(expanded, gf, query, gallery, "standard")
  assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-6)
