"""Evaluation during training (eval.every), the best state (eval.select), across a resume."""

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from configs import image_reid
from data_pipelines.datasets import training_records
from jreid import methods
from jreid.eval.tasks import evaluate_tasks
from jreid.train import evaluation, loop
from jreid.train.checkpoint import Checkpointer
from jreid.train.state import TrainState


class _Log:
  def __init__(self):
    self.lines, self.scalars_written = [], {}

  def scalars(self, step, values, prefix=""):
    self.scalars_written.update({(step, prefix + name): value for name, value in values.items()})

  def line(self, text):
    self.lines.append(text)


def _state(step: int) -> TrainState:
  return TrainState(step=jnp.asarray(step, jnp.int32), params={"w": jnp.full((), float(step))}, model_state={},
                    opt_state={}, rng=jnp.zeros(2, jnp.uint32))


def _kept_step(workdir) -> int | None:
  checkpointer = Checkpointer(str(workdir / evaluation.BEST))
  try:
    return checkpointer.latest_step()
  finally:
    checkpointer.close()


def test_a_resumed_run_keeps_the_best_so_far(tmp_path, monkeypatch):
  mean_map = {2: 0.5, 4: 0.2, 6: 0.4, 8: 0.6}
  monkeypatch.setattr(evaluation, "evaluate_tasks", lambda config, method, state, data: {
      "a": {"mAP": mean_map[int(state.step)], "rank1": 0.25}, "b": {"skipped": "no such queries"}})
  config = image_reid.get_config("smoke")
  config.eval.update(every=2, select=True)
  log = _Log()
  first = evaluation.PeriodicEvaluation(config, None, None, str(tmp_path))
  for step in (2, 4):
    first(_state(step), log)
  assert _kept_step(tmp_path) == 2
  resumed = evaluation.PeriodicEvaluation(config, None, None, str(tmp_path))  # a new process reads them back
  resumed(_state(6), log)
  assert _kept_step(tmp_path) == 2  # 0.4 is below the 0.5 of step 2, evaluated before the interruption
  resumed(_state(8), log)
  assert _kept_step(tmp_path) == 8
  assert evaluation.read_evaluations(str(tmp_path)) == {
      step: {"mean_mAP": value, "tasks": {"a": {"mAP": value, "rank1": 0.25}}} for step, value in mean_map.items()}
  assert log.scalars_written[(8, "eval/a/mAP")] == 0.6 and log.scalars_written[(4, "eval/mean_mAP")] == 0.2
  assert log.lines[-1] == "eval at step 8: mean mAP 60.0 (best so far); mAP/rank-1 (%): a 60.0/25.0"
  with Image.open(tmp_path / evaluation.CURVES) as curves:
    assert curves.size == (960, 540) and len(curves.getcolors(1 << 16)) > 4  # drawn, not blank


def test_without_select_no_state_is_kept_and_select_needs_every(tmp_path, monkeypatch):
  monkeypatch.setattr(evaluation, "evaluate_tasks", lambda *args: {"a": {"mAP": 0.5, "rank1": 0.5}})
  config = image_reid.get_config("smoke")
  config.eval.update(every=2, select=False)
  (hook,) = evaluation.evaluation_hooks(config, None, None, str(tmp_path))
  assert hook.every == 2 and hook.due(4) and not hook.due(5)
  hook.run(_state(2), _Log())
  assert _kept_step(tmp_path) is None and sorted(evaluation.read_evaluations(str(tmp_path))) == [2]
  config.eval.every = 0
  assert evaluation.evaluation_hooks(config, None, None, str(tmp_path)) == ()
  config.eval.select = True
  with pytest.raises(ValueError, match="eval.every"):
    evaluation.evaluation_hooks(config, None, None, str(tmp_path))


@pytest.fixture(scope="module")
def run_config(tiny):
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=3, num_instances=2)
  config.train.update(num_steps=6, checkpoint_every=100)
  config.eval.update(tasks=("traditional", "cross_resolution"), every=2, select=True)
  return config, methods.build(config, tiny.num_train_ids, training_records(tiny, config.data.train_modalities))


def _train(config, method, data, workdir, **kwargs):
  hooks = evaluation.evaluation_hooks(config, method, data, str(workdir))
  return loop.train(config, str(workdir), method, hooks=hooks, show_progress=False, **kwargs)


def test_training_evaluates_every_n_steps_resumes_and_reports_the_best(run_config, tiny, tmp_path):
  config, method = run_config
  straight, history = _train(config, method, tiny, tmp_path / "straight")
  evaluations = evaluation.read_evaluations(str(tmp_path / "straight"))
  assert sorted(evaluations) == [2, 4, 6]
  assert set(evaluations[2]["tasks"]) == {"traditional", "cross_resolution"}
  events = b"".join(p.read_bytes() for p in (tmp_path / "straight" / "tensorboard").iterdir())
  assert b"eval/traditional/mAP" in events and b"eval/cross_resolution/rank1" in events and b"eval/mean_mAP" in events
  _, plain = loop.train(config, str(tmp_path / "plain"), method, show_progress=False)
  assert plain == history  # evaluating does not change training

  _train(config, method, tiny, tmp_path / "resumed", stop_at=3)
  assert sorted(evaluation.read_evaluations(str(tmp_path / "resumed"))) == [2]
  _train(config, method, tiny, tmp_path / "resumed")
  assert evaluation.read_evaluations(str(tmp_path / "resumed")) == evaluations

  best = evaluation.best_step(evaluations)
  assert _kept_step(tmp_path / "straight") == _kept_step(tmp_path / "resumed") == best
  state, reported = evaluation.reported_state(config, str(tmp_path / "straight"), method, straight)
  assert int(state.step) == best and reported.startswith(f"step {best}, the best mean mAP")
  results = evaluate_tasks(config, method, state, tiny, str(tmp_path / "straight"), reported)
  np.testing.assert_allclose(np.mean([r["mAP"] for r in results.values()]), evaluations[best]["mean_mAP"], rtol=1e-6)
  assert (tmp_path / "straight" / "results.md").read_text().startswith(f"Evaluated at step {best}, the best")
  last = config.copy_and_resolve_references()
  last.eval.select = False
  state, reported = evaluation.reported_state(last, str(tmp_path / "straight"), method, straight)
  assert state is straight and reported == "step 6, the last"
