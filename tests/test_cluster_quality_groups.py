"""Pseudo-label pair scores against a pair loop, and ITKM's group split."""

import itertools

import numpy as np
import pytest

from data_pipelines.records import Record
from jreid.cluster import pairwise_scores, split_groups


def pair_loop_scores(pseudo, true):
  shared = predicted = actual = 0
  for i, j in itertools.combinations(range(len(pseudo)), 2):
    same_pseudo = pseudo[i] >= 0 and pseudo[i] == pseudo[j]
    predicted += same_pseudo
    actual += true[i] == true[j]
    shared += same_pseudo and true[i] == true[j]
  precision, recall = shared / predicted, shared / actual
  return precision, recall, 2 * precision * recall / (precision + recall)


def test_cluster_pairwise_scores_match_pair_loop():
  rng = np.random.default_rng(0)
  true = rng.integers(0, 12, 150)
  pseudo = np.where(rng.random(150) < 0.8, true // 2, rng.integers(-1, 8, 150))
  got = pairwise_scores(pseudo, true)
  np.testing.assert_allclose([got["precision"], got["recall"], got["fscore"]], pair_loop_scores(pseudo, true))
  assert got["outliers"] == np.sum(pseudo == -1) > 0
  assert got["clusters"] == len(set(pseudo.tolist()) - {-1})


def test_cluster_pairwise_scores_by_hand():
  # Clusters {0, 1, 2} and {3, 4}, item 5 an outlier; identities {0, 1}, {2, 3, 4, 5}.
  got = pairwise_scores([0, 0, 0, 1, 1, -1], [7, 7, 8, 8, 8, 8])
  assert got["precision"] == pytest.approx(2 / 4)  # (0,1) and (3,4) of 4 predicted pairs
  assert got["recall"] == pytest.approx(2 / 7)  # of 1 + 6 true pairs
  assert (got["clusters"], got["outliers"]) == (2, 1)
  assert pairwise_scores([-1, -1], [0, 0]) == {"precision": 0.0, "recall": 0.0, "fscore": 0.0, "clusters": 0,
                                                "outliers": 2}


def test_cluster_split_groups_by_modality_and_resolution():
  records = [Record("a", 0, 0, modality="rgb"), Record("b", 0, 1, modality="ir", scale=2),
             Record("c", 1, 0, modality="ir", scale=1), Record("d", 1, 1, modality="rgb", scale=4)]
  np.testing.assert_array_equal(split_groups(records, "visible_infrared"), [0, 1, 1, 0])
  np.testing.assert_array_equal(split_groups(records, "cross_resolution"), [0, 1, 0, 1])
  np.testing.assert_array_equal(split_groups({"scale": np.array([1, 1, 3])}, "cross_resolution"), [0, 0, 1])
  with pytest.raises(ValueError, match="'rgb' or 'ir'"):
    split_groups([Record("e", 0, 0, modality="sketch")], "visible_infrared")
  with pytest.raises(ValueError, match="unknown scenario"):
    split_groups(records, "clothes_changing")


def test_cluster_split_groups_by_kmeans_for_clothes_change():
  rng = np.random.default_rng(0)
  side = rng.integers(0, 2, 40)
  features = np.where(side[:, None] == 1, 5.0, -5.0) + rng.normal(size=(40, 8))
  records = [Record(str(i), i, 0) for i in range(40)]
  groups = split_groups(records, "clothes_change", features, seed=3)
  np.testing.assert_array_equal(groups, side != side[0])
  np.testing.assert_array_equal(split_groups(records, "clothes_change", features, seed=3), groups)
  with pytest.raises(ValueError, match="initial features"):
    split_groups(records, "clothes_change")
