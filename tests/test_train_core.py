"""Training core: schedules, parameter groups, the non-finite guard, checkpoint + resume."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import image_reid
from jreid import methods
from jreid.methods.base import Method
from jreid.train import loop
from jreid.train.optimizer import make_optimizer, make_schedule
from jreid.train.step import NonFiniteLossError


def _optim(**overrides):
  cfg = image_reid.get_config("smoke").optim
  cfg.update(overrides)
  return cfg


def test_warmup_then_cosine_schedule_by_hand():
  cfg = _optim(lr=1.0, warmup_init_lr=0.1, warmup_steps=10, min_lr=0.0, schedule="cosine")
  schedule = make_schedule(cfg, total_steps=110)
  assert math.isclose(schedule(0), 0.1, rel_tol=1e-6)
  assert math.isclose(schedule(5), 0.1 + 0.9 * 0.5, rel_tol=1e-6)
  assert math.isclose(schedule(10), 1.0, rel_tol=1e-6)
  assert math.isclose(schedule(60), 0.5 * (1 + math.cos(math.pi * 0.5)), rel_tol=1e-5)
  assert math.isclose(schedule(110), 0.0, abs_tol=1e-7)


def test_a_zero_learning_rate_is_a_schedule_of_zeros():
  """lr 0 (a start evaluated through a method's whole pipeline) is allowed: every step's rate is 0."""
  schedule = make_schedule(_optim(lr=0.0, warmup_init_lr=0.0, warmup_steps=10, min_lr=0.0, schedule="cosine"), 110)
  assert [float(schedule(s)) for s in (0, 10, 60, 110)] == [0.0] * 4


def test_step_schedule_by_hand():
  cfg = _optim(lr=1.0, warmup_init_lr=1.0, warmup_steps=0, schedule="step", step_milestones=(20, 40), step_gamma=0.1)
  schedule = make_schedule(cfg, total_steps=100)
  assert [round(float(schedule(s)), 6) for s in (0, 19, 21, 39, 41)] == [1.0, 1.0, 0.1, 0.1, 0.01]


def test_param_groups_set_lr_and_weight_decay():
  params = {"dense": {"kernel": jnp.ones((2,)), "bias": jnp.ones((2,))}, "classifier": {"kernel": jnp.ones((2,))}}
  cfg = _optim(name="adamw", lr=0.1, warmup_steps=0, warmup_init_lr=0.1, schedule="constant", weight_decay=0.5,
               param_groups=[dict(pattern="bias", weight_decay=0.0), dict(pattern="classifier", lr_mult=2.0)])
  tx, _ = make_optimizer(cfg, params, total_steps=10)
  zero_grads = jax.tree_util.tree_map(jnp.zeros_like, params)
  updates, _ = tx.update(zero_grads, tx.init(params), params)
  # With zero gradients AdamW's update is -lr * wd * param.
  np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * 0.5, rtol=1e-6)
  np.testing.assert_allclose(updates["dense"]["bias"], 0.0)
  np.testing.assert_allclose(updates["classifier"]["kernel"], -0.2 * 0.5, rtol=1e-6)


class _LogMethod(Method):
  """loss = log(w): with SGD lr 0.6 from w = 1, w goes 1 -> 0.4 -> -1.1, so step 3 is NaN."""

  def encode_images(self, params, model_state, images):
    raise NotImplementedError

  def encode_records(self, state, records, kind, batch_size):
    raise NotImplementedError

  def init(self, rng, batch):
    return {"w": jnp.ones(())}, {}

  def loss(self, params, model_state, batch, rng):
    value = jnp.log(params["w"])
    return value, ({"log_w": value, "zero": jnp.zeros(())}, model_state)


def test_non_finite_guard_names_step_and_term(tmp_path, tiny_records):
  config = image_reid.get_config("smoke")
  config.optim.update(name="sgd", b1=0.0, lr=0.6, warmup_init_lr=0.6, schedule="constant", weight_decay=0.0,
                      param_groups=[])
  config.data.update(num_ids=2, num_instances=2)
  with pytest.raises(NonFiniteLossError, match=r"step 3: log_w=nan \(then loss=nan\)$"):
    loop.train(config, str(tmp_path), _LogMethod(config, 1, tiny_records), show_progress=False)
  assert not (tmp_path / "checkpoints" / "5").exists()


def _smoke(num_steps):
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=3, num_instances=2)
  config.train.update(num_steps=num_steps, checkpoint_every=100)
  return config


def test_resume_gives_identical_losses_and_parameters(tmp_path, tiny_records):
  config = _smoke(6)
  method = methods.build(config, num_classes=7, train_records=tiny_records)
  straight, straight_history = loop.train(config, str(tmp_path / "straight"), method, show_progress=False)
  _, first_half = loop.train(config, str(tmp_path / "resumed"), method, show_progress=False, stop_at=3)
  resumed, second_half = loop.train(config, str(tmp_path / "resumed"), method, show_progress=False)
  assert sorted(first_half) == [1, 2, 3] and sorted(second_half) == [4, 5, 6]
  for step in range(1, 7):
    assert (first_half | second_half)[step] == straight_history[step]
  assert int(resumed.step) == 6
  for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Training changed the parameters, so the equality above is not vacuous.
  fresh = loop.state_setup(config, method).create()
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(fresh.params),
                                                     jax.tree_util.tree_leaves(straight.params))]
  assert any(moved)
