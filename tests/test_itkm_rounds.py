"""ITKM's per-round computations (DRU, CHM, IHM, clustering per domain) against NumPy loops."""

import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from jreid.methods.itkm import rounds
from jreid.methods.itkm.phases import Segment, prompt_batch, segments, staged_optimizer


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_dynamic_text_update_by_hand():
  rng = np.random.default_rng(0)
  texts = _unit(rng.normal(size=(8, 3)))
  labels = np.array([0, 0, 0, 1, 1, 1, -1, 2])  # no ties in closeness to a cluster's mean
  rho, mu = 0.5, 0.9
  cluster_text, updated = rounds.dynamic_text_update(texts, labels, 4, rho, mu)
  for k in range(3):
    members = np.flatnonzero(labels == k)
    mean = _unit(texts[members].mean(axis=0))
    order = members[np.argsort(-(texts[members] @ mean))]
    kept = order[:max(int(np.ceil(rho * len(members))), 1)]
    expected = _unit(texts[kept].mean(axis=0))
    np.testing.assert_allclose(cluster_text[k], expected, rtol=1e-5, atol=1e-6)
    for i in members:
      np.testing.assert_allclose(updated[i], _unit(mu * texts[i] + (1 - mu) * expected), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(cluster_text[3], 0)
  np.testing.assert_array_equal(updated[6], texts[6])  # outliers keep theirs
  plain, same = rounds.dynamic_text_update(texts, labels, 4, rho, mu, update=False)
  np.testing.assert_allclose(plain[0], _unit(texts[:3].mean(axis=0)), rtol=1e-5)
  np.testing.assert_array_equal(same, texts)


def _matching_case():
  # Scenario 0: clusters 0, 1 in group A (domain 0), clusters 2, 3 in group B (domain 1).
  memory = _unit(np.array([[1.0, 0.1, 0], [0.1, 1.0, 0], [1.0, 0.0, 0.1], [0.0, 1.0, 0.1]]))
  cluster_domain = np.array([0, 0, 1, 1, -1])
  memory = np.concatenate([memory, np.zeros((1, 3))])
  return memory, cluster_domain


def test_match_domains_image_and_chm_agreement():
  memory, cluster_domain = _matching_case()
  image = rounds.match_domains(memory, memory, cluster_domain, "image", np.random.default_rng(0), 0.0)
  np.testing.assert_array_equal(image, [2, 3, 0, 1, -1])
  crossed = memory[[0, 1, 3, 2, 4]]  # the text centroids pair 0 with 3 and 1 with 2: they disagree everywhere
  kept_none = rounds.match_domains(memory, crossed, cluster_domain, "chm", np.random.default_rng(0), 0.0)
  np.testing.assert_array_equal(kept_none, -1)
  kept_all = rounds.match_domains(memory, crossed, cluster_domain, "chm", np.random.default_rng(0), 1.0)
  np.testing.assert_array_equal(kept_all, image)
  agreeing = rounds.match_domains(memory, memory, cluster_domain, "chm", np.random.default_rng(0), 0.0)
  np.testing.assert_array_equal(agreeing, image)
  np.testing.assert_array_equal(rounds.match_domains(memory, memory, cluster_domain, "none", None, 0.5), -1)


def test_ihm_positives_by_hand():
  rng = np.random.default_rng(1)
  image, text = _unit(rng.normal(size=(9, 4))), _unit(rng.normal(size=(9, 4)))
  domain = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
  k = 3
  got = rounds.ihm_positives(image, text, domain, k, chunk=4)
  for i in range(9):
    other = np.flatnonzero(domain == (domain[i] ^ 1))
    by_image = other[np.argsort(-(image[other] @ image[i]), kind="stable")][:k]
    by_text = set(other[np.argsort(-(text[other] @ text[i]), kind="stable")][:k])
    expected = [j if j in by_text else -1 for j in by_image]
    np.testing.assert_array_equal(got[i], expected + [-1] * (k - len(expected)))


def test_cluster_domains_keeps_domains_apart():
  rng = np.random.default_rng(2)
  centres = _unit(rng.normal(size=(4, 8)))
  features = _unit(np.repeat(centres, 6, axis=0) + 0.01 * rng.normal(size=(24, 8)))
  domain = np.repeat([0, 1, 0, 1], 6)  # identities 0, 2 in domain 0; 1, 3 in domain 1
  labels, cluster_domain = rounds.cluster_domains(features, domain, 10, eps=0.6, min_samples=3, k1=5, k2=2)
  assert np.sum(cluster_domain >= 0) == 4
  for identity in range(4):
    rows = labels[6 * identity:6 * identity + 6]
    assert len(set(rows)) == 1 and rows[0] >= 0 and cluster_domain[rows[0]] == domain[6 * identity]


def test_label_scores_merge_matched_clusters():
  labels = np.array([0, 0, 1, 1])
  pids = np.array([5, 5, 5, 5])
  domain = np.array([0, 0, 1, 1])
  scores = rounds.label_scores(labels, pids, domain, np.array([1, 0]), ["vi"])
  assert scores["vi/precision"] == 1.0 and np.isclose(scores["vi/recall"], 2 / 6)
  assert scores["vi/matched_fscore"] == 1.0


def test_segments_and_prompt_batches():
  cfg = ConfigDict(dict(stage1_rounds=2, stage2_steps=3, stage3_rounds=1, round_steps=4))
  assert segments(cfg) == [Segment(1, 0, 0, 4), Segment(1, 1, 4, 8), Segment(2, 0, 8, 11), Segment(3, 0, 11, 15)]
  labels = np.array([0, 0, 1, 1, 1, -1, 2])
  batch = prompt_batch(labels, 2, 2, seed=0, step=5)
  np.testing.assert_array_equal(batch, prompt_batch(labels, 2, 2, seed=0, step=5))
  assert batch.shape == (4,) and np.all(labels[batch] >= 0)
  assert labels[batch[0]] == labels[batch[1]] and labels[batch[2]] == labels[batch[3]]


def test_staged_optimizer_updates_only_its_part():
  params = {"image": jnp.ones(3), "prompts": jnp.ones(2)}
  grads = {"image": jnp.ones(3), "prompts": jnp.ones(2)}
  sgd = optax.sgd(0.5)
  for trained, frozen in (("image", "prompts"), ("prompts", "image")):
    tx = staged_optimizer(optax.adam(0.1), sgd, trained)
    state = tx.init(params)
    updates, new_state = tx.update(grads, state, params)
    assert np.all(np.asarray(updates[frozen]) == 0) and np.all(np.asarray(updates[trained]) != 0)
    assert optax.tree.norm(new_state[frozen]) == optax.tree.norm(state[frozen])


def test_nearest_centroid_is_euclidean_not_the_largest_dot_product():
  centroids = np.array([[1.0, 0.0], [3.0, 0.5]])
  assert rounds.nearest_centroid(np.array([[1.2, 0.0]]), centroids)[0] == 0  # the dot product would pick 1
  rng = np.random.default_rng(0)
  features, centroids = rng.normal(size=(50, 6)), rng.normal(size=(2, 6))
  brute = [int(np.argmin([np.sum((f - c) ** 2) for c in centroids])) for f in features]
  np.testing.assert_array_equal(rounds.nearest_centroid(features, centroids), brute)
