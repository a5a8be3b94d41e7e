"""Pretraining losses (CLIP's image-text InfoNCE, DINO self-distillation, the EMA teacher) against NumPy loops."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreid import losses


def _softmax(row):
  e = np.exp(row - row.max())
  return e / e.sum()


def _log_softmax(row):
  row = row - row.max()
  return row - np.log(np.exp(row).sum())


def _reference_clip(images, texts, log_scale):
  """Loops over rows: CE of image i against all captions at caption i, and of caption i against all images."""
  images = images / np.linalg.norm(images, axis=1, keepdims=True)
  texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
  scale = math.exp(min(log_scale, math.log(100.0)))
  n, total = len(images), 0.0
  for i in range(n):
    image_row = np.array([scale * images[i] @ texts[j] for j in range(n)])
    text_row = np.array([scale * texts[i] @ images[j] for j in range(n)])
    total += -0.5 * (_log_softmax(image_row)[i] + _log_softmax(text_row)[i])
  return total / n


def _reference_dino(student, teacher, centre, tau_t, tau_s):
  """Sum over teacher view u, student view v != u, image b of the cross-entropy, divided by the number of terms."""
  total, terms = 0.0, 0
  for u in range(teacher.shape[0]):
    for v in range(student.shape[0]):
      if u == v:
        continue
      for b in range(student.shape[1]):
        target = _softmax((teacher[u, b] - centre) / tau_t)
        log_p = _log_softmax(student[v, b] / tau_s)
        total += -np.sum(target * log_p) / student.shape[1]
      terms += 1
  return total / terms


@pytest.mark.parametrize("log_scale", [math.log(1 / 0.07), 2.0, 5.0])  # 5.0 > log 100: capped.
def test_image_text_contrastive_matches_numpy(log_scale):
  rng = np.random.default_rng(0)
  images, texts = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
  got = losses.image_text_contrastive(jnp.asarray(images, jnp.float32), jnp.asarray(texts, jnp.float32),
                                      jnp.float32(log_scale))
  np.testing.assert_allclose(float(got), _reference_clip(images, texts, log_scale), rtol=1e-5)


def test_image_text_contrastive_learns_its_temperature():
  rng = np.random.default_rng(1)
  images, texts = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
  loss = lambda s: losses.image_text_contrastive(jnp.asarray(images, jnp.float32), jnp.asarray(texts, jnp.float32), s)
  h, s = 1e-4, 1.5
  numeric = (_reference_clip(images, texts, s + h) - _reference_clip(images, texts, s - h)) / (2 * h)
  np.testing.assert_allclose(float(jax.grad(loss)(jnp.float32(s))), numeric, rtol=1e-3)
  assert float(jax.grad(loss)(jnp.float32(5.0))) == 0.0  # Above the cap the scale is constant.
  assert losses.INIT_LOG_SCALE == pytest.approx(math.log(1 / 0.07))


def test_image_text_contrastive_matched_pairs_cost_less():
  rng = np.random.default_rng(2)
  images = rng.normal(size=(8, 16)).astype(np.float32)
  matched = losses.image_text_contrastive(images, images + 0.01 * rng.normal(size=images.shape), jnp.float32(3.0))
  shuffled = losses.image_text_contrastive(images, images[::-1], jnp.float32(3.0))
  assert float(matched) < 0.1 < float(shuffled)


@pytest.mark.parametrize("num_views", [2, 5])
def test_dino_loss_matches_numpy(num_views):
  rng = np.random.default_rng(3)
  student, teacher = rng.normal(size=(num_views, 4, 9)), rng.normal(size=(2, 4, 9))
  centre = rng.normal(size=9) * 0.3
  got = losses.dino_loss(jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32),
                         jnp.asarray(centre, jnp.float32), 0.04, 0.1)
  np.testing.assert_allclose(float(got), _reference_dino(student, teacher, centre, 0.04, 0.1), rtol=1e-5)


def test_dino_loss_skips_same_view_pairs_and_stops_teacher_gradient():
  # Student view v predicts exactly the teacher's view v. Were the (v, v) pairs counted, this would be the
  # cheapest input; with them left out, the swapped student (view v predicts teacher view 1 - v) is.
  rng = np.random.default_rng(4)
  teacher = jnp.asarray(rng.normal(size=(2, 3, 6)) * 5, jnp.float32)
  centre = jnp.zeros(6)
  got = float(losses.dino_loss(teacher * 0.1 / 0.04, teacher, centre, 0.04, 0.1))
  np.testing.assert_allclose(got, _reference_dino(np.asarray(teacher * 0.1 / 0.04), np.asarray(teacher),
                                                  np.zeros(6), 0.04, 0.1), rtol=1e-5)
  swapped = float(losses.dino_loss(teacher[::-1] * 0.1 / 0.04, teacher, centre, 0.04, 0.1))
  assert swapped < got - 1.0
  grad = jax.grad(lambda t: losses.dino_loss(teacher, t, centre, 0.04, 0.1))(teacher)
  assert float(jnp.abs(grad).max()) == 0.0


def test_update_centre_is_an_ema_of_the_batch_mean():
  rng = np.random.default_rng(5)
  teacher, centre = rng.normal(size=(2, 5, 7)), rng.normal(size=7)
  got = losses.update_centre(jnp.asarray(centre, jnp.float32), jnp.asarray(teacher, jnp.float32), 0.9)
  mean = sum(teacher[u, b] for u in range(2) for b in range(5)) / 10
  np.testing.assert_allclose(np.asarray(got), 0.9 * centre + 0.1 * mean, rtol=1e-5)


def test_teacher_momentum_cosine_schedule():
  steps = np.array([0, 25, 50, 100, 150])
  got = np.asarray([float(losses.teacher_momentum(s, 100, 0.996, 1.0)) for s in steps])
  expected = [1 - 0.004 * (math.cos(math.pi * min(s / 100, 1)) + 1) / 2 for s in steps]
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)
  assert got[0] == pytest.approx(0.996) and got[3] == 1.0 and got[4] == 1.0
  assert np.all(np.diff(got) >= 0)


def test_ema_update_of_teacher_params():
  rng = np.random.default_rng(6)
  teacher = {"a": rng.normal(size=(3, 2)).astype(np.float32), "b": {"c": rng.normal(size=4).astype(np.float32)}}
  student = jax.tree.map(lambda x: x + rng.normal(size=x.shape).astype(np.float32), teacher)
  got = losses.ema_update(teacher, student, 0.99)
  np.testing.assert_allclose(got["a"], 0.99 * teacher["a"] + 0.01 * student["a"], rtol=1e-6)
  np.testing.assert_allclose(got["b"]["c"], 0.99 * teacher["b"]["c"] + 0.01 * student["b"]["c"], rtol=1e-6)
  assert jax.tree.all(jax.tree.map(lambda x: x.dtype == np.float32, got))
  # Momentum 1 (the schedule's end) freezes the teacher; 0 copies the student.
  np.testing.assert_array_equal(losses.ema_update(teacher, student, 1.0)["a"], teacher["a"])
  np.testing.assert_allclose(losses.ema_update(teacher, student, 0.0)["a"], student["a"], rtol=1e-6)
  # Repeated updates towards a fixed student: teacher - student shrinks by momentum^k.
  state = teacher
  for _ in range(5):
    state = losses.ema_update(state, student, 0.9)
  np.testing.assert_allclose(state["a"] - student["a"], 0.9 ** 5 * (teacher["a"] - student["a"]), rtol=1e-4,
                             atol=1e-6)


def test_image_text_contrastive_over_the_captioned_pairs_only():
  rng = np.random.default_rng(7)
  images, texts = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
  valid = np.array([True, False, True, True, False, True])
  got = losses.image_text_contrastive(images, texts, jnp.float32(2.0), jnp.asarray(valid))
  np.testing.assert_allclose(float(got), _reference_clip(images[valid], texts[valid], 2.0), rtol=1e-5)
  grad = jax.grad(lambda x: losses.image_text_contrastive(x, texts, jnp.float32(2.0), jnp.asarray(valid)))(images)
  assert np.all(np.isfinite(grad)) and np.all(grad[~valid] == 0) and np.all(np.abs(grad[valid]).sum(axis=1) > 0)
  assert float(losses.image_text_contrastive(images, texts, jnp.float32(2.0), jnp.zeros(6, bool))) == 0.0


def test_teacher_temperature_warms_up_linearly():
  got = [float(losses.teacher_temperature(s, 10, 0.04, 0.07)) for s in (0, 5, 10, 20)]
  np.testing.assert_allclose(got, [0.04, 0.055, 0.07, 0.07], rtol=1e-6)
  assert float(losses.teacher_temperature(3, 0, 0.04, 0.07)) == pytest.approx(0.07)  # No warm-up.
