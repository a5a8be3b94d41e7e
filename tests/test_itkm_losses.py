"""ITKM loss terms against plain NumPy loops over hand-made inputs."""

import numpy as np

from jreid.losses import itkm

TAU = 0.5


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


RNG = np.random.default_rng(0)
F = _unit(RNG.normal(size=(4, 3)))  # 4 batch features
C = _unit(RNG.normal(size=(5, 3)))  # 5 prototypes
# Prototypes 0-2 belong to group 0, 3-4 to group 1; rows 0, 1 are group 0, rows 2, 3 group 1.
PROTO_GROUP = np.array([0, 0, 0, 1, 1])
ROW_GROUP = np.array([0, 0, 1, 1])


def _log_softmax_at(f, protos, keep, target):
  logits = np.array([f @ protos[k] / TAU for k in keep])
  return f @ protos[target] / TAU - np.log(np.sum(np.exp(logits)))


def test_prototype_contrast_own_group():
  targets = np.array([2, 0, 4, -1])  # row 3 has no target
  allowed = PROTO_GROUP[None, :] == ROW_GROUP[:, None]
  expected = np.mean([-_log_softmax_at(F[i], C, np.flatnonzero(allowed[i]), targets[i]) for i in range(3)])
  got = itkm.prototype_contrast(F, C, targets, allowed, TAU)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_prototype_contrast_other_group_and_no_target():
  targets = np.array([3, -1, 1, -1])  # matched clusters of the other group
  allowed = PROTO_GROUP[None, :] != ROW_GROUP[:, None]
  expected = np.mean([-_log_softmax_at(F[i], C, np.flatnonzero(allowed[i]), targets[i]) for i in (0, 2)])
  np.testing.assert_allclose(itkm.prototype_contrast(F, C, targets, allowed, TAU), expected, rtol=1e-5)
  none = np.full(4, -1)
  assert float(itkm.prototype_contrast(F, C, none, allowed, TAU)) == 0.0


def test_instance_positive_contrast():
  bank = _unit(RNG.normal(size=(6, 3)))
  bank_group = np.array([0, 0, 0, 1, 1, 1])
  allowed = bank_group[None, :] != ROW_GROUP[:, None]
  positives = np.array([[3, 5], [-1, -1], [1, -1], [0, 2]])
  per_row = []
  for i in (0, 2, 3):
    keep = np.flatnonzero(allowed[i])
    ps = [p for p in positives[i] if p >= 0]
    per_row.append(-np.mean([_log_softmax_at(F[i], bank, keep, p) for p in ps]))
  got = itkm.instance_positive_contrast(F, bank, positives, allowed, TAU)
  np.testing.assert_allclose(got, np.mean(per_row), rtol=1e-5)


def test_text_guided():
  instance_text = _unit(RNG.normal(size=(4, 3)))
  allowed = PROTO_GROUP[None, :] == ROW_GROUP[:, None]
  expected = []
  for i in range(4):
    denominator = np.sum([np.exp(F[i] @ C[k] / TAU) for k in np.flatnonzero(allowed[i])])
    expected.append(-np.log(np.exp(F[i] @ instance_text[i] / TAU) / denominator))
  got = itkm.text_guided(F, instance_text, C, allowed, TAU)
  np.testing.assert_allclose(got, np.mean(expected), rtol=1e-5)


def test_image_to_text_and_text_to_image():
  labels = np.array([0, 0, 1, 2])
  label_text = _unit(RNG.normal(size=(3, 3)))
  texts = label_text[labels]
  i2t = np.mean([-np.log(np.exp(F[i] @ texts[i] / TAU) / np.sum([np.exp(F[i] @ texts[a] / TAU) for a in range(4)]))
                 for i in range(4)])
  np.testing.assert_allclose(itkm.image_to_text(F, texts, TAU), i2t, rtol=1e-5)
  t2i = []
  for i in range(4):
    denominator = np.sum([np.exp(F[a] @ texts[i] / TAU) for a in range(4)])
    positives = [p for p in range(4) if labels[p] == labels[i]]
    t2i.append(-np.mean([np.log(np.exp(F[p] @ texts[i] / TAU) / denominator) for p in positives]))
  np.testing.assert_allclose(itkm.text_to_image(F, texts, labels, TAU), np.mean(t2i), rtol=1e-5)


def test_scenario_separation():
  texts = _unit(RNG.normal(size=(4, 3)))
  scenario = np.array([0, 0, 1, 2])
  margin = -0.2
  values = [max(texts[i] @ texts[j] - margin, 0.0) for i in range(4) for j in range(4) if scenario[i] != scenario[j]]
  np.testing.assert_allclose(itkm.scenario_separation(texts, scenario, margin), np.mean(values), rtol=1e-5)
  assert float(itkm.scenario_separation(texts, np.zeros(4, int), 0.0)) == 0.0
