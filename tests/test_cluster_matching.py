"""Cluster matching (Hungarian + leftovers pass) and image/text agreement, by hand."""

import numpy as np

from jreid.cluster import agreeing_pairs, match_clusters


def test_cluster_match_square_is_hungarian_on_exp_cost():
  # Greedy would take (0, 0) at 0.9 and leave (1, 1) at -0.9; the assignment
  # minimising sum exp(-cos) takes (0, 1) and (1, 0): e^-0.8 + e^-0.8 < e^-0.9 + e^0.9.
  sim = np.array([[0.9, 0.8], [0.8, -0.9]])
  np.testing.assert_array_equal(match_clusters(sim), [[0, 1], [1, 0]])


def test_cluster_match_assigns_leftovers_of_the_larger_side():
  # A has 4 clusters, B has 2: the first pass matches A0-B0 and A3-B1; A1
  # and A2 go to B in a second assignment (A1 -> B1, A2 -> B0).
  sim = np.array([[0.9, 0.0], [0.1, 0.5], [0.6, 0.2], [0.0, 0.8]])
  np.testing.assert_array_equal(match_clusters(sim), [[0, 0], [1, 1], [2, 0], [3, 1]])
  # The same with the sides swapped: pairs stay (A cluster, B cluster).
  np.testing.assert_array_equal(match_clusters(sim.T), [[0, 0], [0, 2], [1, 1], [1, 3]])


def test_cluster_match_leftovers_beyond_the_smaller_side_stay_unmatched():
  sim = np.array([[0.9], [0.5], [0.7]])
  np.testing.assert_array_equal(match_clusters(sim), [[0, 0], [2, 0]])
  assert match_clusters(np.zeros((0, 3))).shape == (0, 2)


def test_cluster_agreeing_pairs_keeps_agreement_and_samples_the_rest():
  image = np.array([[0, 0], [1, 2], [2, 1], [3, 3]])
  text = np.array([[0, 0], [1, 1], [3, 3], [2, 2]])
  np.testing.assert_array_equal(agreeing_pairs(image, text, np.random.default_rng(0), p=0.0), [[0, 0], [3, 3]])
  np.testing.assert_array_equal(agreeing_pairs(image, text, np.random.default_rng(0), p=1.0), image)
  draws = np.random.default_rng(7).random(4) < 0.5  # the same draws, one per image pair
  want = image[np.array([True, False, False, True]) | draws]
  np.testing.assert_array_equal(agreeing_pairs(image, text, np.random.default_rng(7), p=0.5), want)
  kept = [len(agreeing_pairs(image, text, np.random.default_rng(s))) - 2 for s in range(2000)]
  assert abs(np.mean(kept) - 1.0) < 0.05  # two disagreeing pairs at p = 0.5
