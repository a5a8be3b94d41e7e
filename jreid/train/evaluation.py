"""Evaluation during training (config.eval.every) and the state a run reports (config.eval.select).

Every `eval.every` steps a hook evaluates config.eval.tasks (jreid.eval.tasks,
without pictures or result files), writes each task's mAP and rank-1 and their
mean mAP to TensorBoard ('eval/<task>/mAP', 'eval/<task>/rank1',
eval/mean_mAP') and the console, and records them in WORKDIR/evaluations.json,
drawn as learning curves in WORKDIR/evaluations.png.
With `eval.select` a state whose mean mAP beats every earlier evaluation's is
kept in WORKDIR/best/ (one checkpoint). A resumed run reads the evaluations
back, so the best so far survives the interruption; the steps it trains again
evaluate again to the same values.

After training, `reported_state` gives the state the final table reports,
with a line saying which step that is: the best with `eval.select`, else the
last.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from ml_collections import ConfigDict

from data_pipelines.records import ReIDData
from jreid.eval.curves import save_curves
from jreid.eval.tasks import evaluate_tasks
from jreid.train.checkpoint import Checkpointer
from jreid.train.loop import restore_state
from jreid.train.phase import Hook, Trainable
from jreid.train.state import TrainState
from jreid.train.writer import RunLog

EVALUATIONS = "evaluations.json"  # {step: {'mean_mAP', 'tasks': {task: {'mAP', 'rank1'}}}}, under the workdir
CURVES = "evaluations.png"  # their mAP curves, under the workdir
BEST = "best"  # the checkpoint of the best evaluation, under the workdir


def evaluation_hooks(config: ConfigDict, method, data: ReIDData, workdir: str) -> tuple[Hook, ...]:
  """The evaluation hook of config.eval.every (none for 0)."""
  every = config.eval.every
  if config.eval.select and every <= 0:
    raise ValueError("eval.select keeps the best of the evaluations every eval.every steps: set eval.every > 0")
  return (Hook(every, PeriodicEvaluation(config, method, data, workdir)),) if every > 0 else ()


def read_evaluations(workdir: str) -> dict[int, dict]:
  """The evaluations a run recorded, by step ({} if none)."""
  path = os.path.join(workdir, EVALUATIONS)
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    return {int(step): evaluation for step, evaluation in json.load(f).items()}


def best_step(evaluations: dict[int, dict]) -> int | None:
  """The step of the highest mean mAP (the earliest of equals); None without evaluations."""
  if not evaluations:
    return None
  return max(sorted(evaluations), key=lambda step: evaluations[step]["mean_mAP"])


class PeriodicEvaluation:
  """The hook: evaluates, logs, records and, with config.eval.select, keeps the best state."""

  def __init__(self, config: ConfigDict, method, data: ReIDData, workdir: str):
    self.config, self.method, self.data, self.workdir = config, method, data, workdir
    self.tasks_config = config.copy_and_resolve_references()  # the tasks alone: no variants with a part missing
    self.tasks_config.eval.missing_modalities = False
    self.evaluations = read_evaluations(workdir)

  def __call__(self, state: TrainState, log: RunLog) -> TrainState:
    step = int(state.step)
    results = evaluate_tasks(self.tasks_config, self.method, state, self.data)
    scored = {name: r for name, r in results.items() if "mAP" in r}
    if not scored:
      raise ValueError(f"eval.every: {self.config.method} encodes none of the queries of {tuple(results)}")
    evaluation = {"mean_mAP": float(np.mean([r["mAP"] for r in scored.values()])),
                  "tasks": {name: {"mAP": r["mAP"], "rank1": r["rank1"]} for name, r in scored.items()}}
    earlier = {s: e for s, e in self.evaluations.items() if s < step}
    best = best_step(earlier)
    improved = best is None or evaluation["mean_mAP"] > earlier[best]["mean_mAP"]
    if self.config.eval.select and improved:
      self._keep(step, state)
    self.evaluations[step] = evaluation
    if jax.process_index() == 0:
      self._write()
    log.scalars(step, {"mean_mAP": evaluation["mean_mAP"],
                       **{f"{name}/{key}": value for name, task in evaluation["tasks"].items()
                          for key, value in task.items()}}, "eval/")
    tasks = ", ".join(f"{name} {100 * t['mAP']:.1f}/{100 * t['rank1']:.1f}" for name, t in evaluation["tasks"].items())
    mark = " (best so far)" if improved and earlier else ""
    log.line(f"eval at step {step}: mean mAP {100 * evaluation['mean_mAP']:.1f}{mark}; mAP/rank-1 (%): {tasks}")
    return state

  def _keep(self, step: int, state: TrainState) -> None:
    checkpointer = Checkpointer(os.path.join(self.workdir, BEST), max_to_keep=1)
    try:
      checkpointer.save(step, state, {})
      checkpointer.wait()
    finally:
      checkpointer.close()

  def _write(self) -> None:
    steps = sorted(self.evaluations)
    path = os.path.join(self.workdir, EVALUATIONS)
    with open(path + ".tmp", "w") as f:
      json.dump({str(step): self.evaluations[step] for step in steps}, f, indent=2)
    os.replace(path + ".tmp", path)
    tasks = self.evaluations[steps[-1]]["tasks"]
    curves = {name: [self.evaluations[step]["tasks"][name]["mAP"] for step in steps] for name in tasks}
    save_curves(os.path.join(self.workdir, CURVES), steps, curves,
                [self.evaluations[step]["mean_mAP"] for step in steps],
                f"{self.config.method} ({self.config.preset} preset): mAP of the evaluation tasks during training")


def reported_state(config: ConfigDict, workdir: str, method: Trainable, state: TrainState) -> tuple[TrainState, str]:
  """(state, which step it is): with config.eval.select the best evaluation's, else `state` (the last)."""
  last = f"step {int(state.step)}, the last"
  if not config.eval.select:
    return state, last
  checkpointer = Checkpointer(os.path.join(workdir, BEST))
  try:
    step = checkpointer.latest_step()
  finally:
    checkpointer.close()
  if step is None:
    return state, last + " (no evaluation kept a best state)"
  evaluations = read_evaluations(workdir)
  best = restore_state(config, workdir, method, step, directory=BEST)
  score = f" ({100 * evaluations[step]['mean_mAP']:.1f})" if step in evaluations else ""
  return best, (f"step {step}, the best mean mAP{score} of {len(evaluations)} evaluations every "
                f"{config.eval.every} steps (eval.select)")
