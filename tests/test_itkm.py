"""ITKM end to end on the tiny synthetic set: the three stages, resume mid-stage, evaluation."""

import dataclasses

import jax
import numpy as np
import pytest

from configs import itkm as itkm_config
from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.eval.tasks import evaluate_tasks
from jreid.methods.itkm.method import ITKM
from jreid.train import loop

_CACHE = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
          "jax_persistent_cache_min_entry_size_bytes")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  """The smoke config, shorter (I: steps 1-2, II: 3-4, III: rounds of steps 5-6 and 7-8); compilations are
  cached on disk, so that the runs after the first reuse them."""
  config = itkm_config.get_config("smoke")
  config.itkm.update(stage1_rounds=1, round_steps=2, stage2_steps=2, stage3_rounds=2)
  data = load_data(config.data, config.seed)
  method = methods.build(config, data.num_train_ids, training_records(data, config.data.train_modalities))
  saved = {name: getattr(jax.config, name) for name in _CACHE}
  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield config, data, method
  for name, value in saved.items():
    jax.config.update(name, value)


def test_prompt_template(smoke):
  _, _, method = smoke
  ids, start = method.template, method.learned_at
  tokenizer = method.tokenizer
  prefix = tokenizer.encode("A photo of a", 24)[0]
  prefix = prefix[1:list(prefix).index(tokenizer.eot_token_id)]
  assert ids[0] == tokenizer.sot_token_id and start == 1 + len(prefix)
  np.testing.assert_array_equal(ids[1:start], prefix)
  assert list(ids).index(tokenizer.eot_token_id) > start + 4


@pytest.fixture(scope="module")
def part(smoke, tmp_path_factory):
  """(workdir, history) of the smoke run stopped at step 5, across two stage boundaries and into a round: the
  run the scrambled one is compared to, and the one test_resume_mid_stage_is_identical_and_evaluates resumes."""
  config, _, method = smoke
  workdir = str(tmp_path_factory.mktemp("itkm_part"))
  _, history = loop.train(config, workdir, method, show_progress=False, stop_at=5)
  return workdir, history


def test_training_ignores_identities(smoke, part, tmp_path):
  """Scrambling every training identity changes nothing of training (pids only score the pseudo labels)."""
  config, data, method = smoke
  records = training_records(data, config.data.train_modalities)
  scrambled = [dataclasses.replace(r, pid=(r.pid * 7919) % 1009, clothes_id=0, camid=0) for r in records]
  other = ITKM(config, data.num_train_ids, scrambled, method.tokenizer)
  _, history = part
  _, scrambled_history = loop.train(config, str(tmp_path / "b"), other, show_progress=False, stop_at=5)
  assert sorted(history) == [1, 2, 3, 4, 5]
  assert history == scrambled_history


def test_resume_mid_stage_is_identical_and_evaluates(smoke, part, tmp_path):
  config, data, method = smoke
  full, full_history = loop.train(config, str(tmp_path / "full"), method, show_progress=False)
  assert sorted(full_history) == list(range(1, 9))
  assert {"homo"} <= set(full_history[1]) and {"i2t", "t2i", "sep"} <= set(full_history[3])
  assert {"homo", "chm", "ihm", "tg"} <= set(full_history[8])
  part, part_history = part  # stopped at step 5: across two stage boundaries, into a round
  for step in part_history:
    for name, value in full_history[step].items():
      np.testing.assert_allclose(part_history[step][name], value, rtol=1e-6, atol=1e-7, err_msg=f"step {step}: {name}")
  resumed, history = loop.train(config, part, method, show_progress=False)  # and on across a round boundary
  assert sorted(history) == [6, 7, 8]
  for step in history:
    for name, value in full_history[step].items():
      np.testing.assert_allclose(history[step][name], value, rtol=1e-6, atol=1e-7, err_msg=f"step {step}: {name}")
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               (full.params, full.model_state), (resumed.params, resumed.model_state))

  restored = loop.restore_state(config, part, method)  # what `--mode=eval` evaluates
  jax.tree.map(np.testing.assert_array_equal, restored.params, resumed.params)

  results = evaluate_tasks(config, method, restored, data, part)
  assert set(results) == {"clothes_changing", "visible_infrared", "cross_resolution"}
  assert all(0.0 <= results[task]["mAP"] <= 1.0 for task in results)


def test_clothes_change_images_are_grouped_as_training_grouped_them(smoke, tmp_path):
  """Evaluation and export group a clothes-change image by the nearest k-means centroid of its initial features:
  on the training images that is the group k-means gave them."""
  config, _, method = smoke
  state, _ = loop.train(config, str(tmp_path / "run"), method, show_progress=False, stop_at=1)
  changing = np.flatnonzero(method.scenario == method.clothes_change_index)
  groups = method.record_groups(state, [method.records[i] for i in changing], config.eval.batch_size)
  trained = np.asarray(state.model_state["round"].domain)[changing] % 2
  assert 0 < trained.sum() < len(trained)
  np.testing.assert_array_equal(groups, trained)
