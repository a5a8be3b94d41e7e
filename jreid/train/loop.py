"""The training loop: a method's phases of jitted steps, their hooks, logging and checkpoints; resumes itself.

The loop trains the phases (jreid.train.phase) in order on one TrainState. A
checkpoint holds the state and the position of the current phase's stream, so
a run killed anywhere resumes identically: inside a phase, its stream is made
again from the state and set to the saved position; a phase that starts at
the checkpoint runs its on-enter hook again (a function of the state).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh
from ml_collections import ConfigDict

from data_pipelines import pipeline
from jreid.train import sharding
from jreid.train.checkpoint import Checkpointer
from jreid.train.phase import Batches, Hook, Phase, Trainable
from jreid.train.preemption import Preempted, PreemptionWatch
from jreid.train.state import TrainState
from jreid.train.step import check_finite, make_train_step
from jreid.train.writer import MetricWriter, Progress, RunLog

CHECKPOINTS = "checkpoints"  # the run's checkpoints, under its workdir


def batch_spec(config: ConfigDict, mesh: Mesh | None = None) -> pipeline.TrainBatchSpec:
  """The training batch of the config; this process loads its block of rows on `mesh` (default: the
  config's mesh)."""
  data = config.data
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  block, blocks = sharding.process_block(sharding.batch_sharding(mesh), data.num_ids * data.num_instances)
  return pipeline.TrainBatchSpec(
      image_size=tuple(config.model.vision.image_size), num_ids=data.num_ids, num_instances=data.num_instances,
      seed=config.seed, augment=pipeline.AugmentConfig(**data.augment.to_dict()),
      balance_modalities=tuple(data.balance_modalities), process_index=block, process_count=blocks,
      on_bad_image=data.get("on_bad_image", "skip"))  # Runs saved before the key default to 'skip'.


@dataclasses.dataclass(frozen=True)
class StateSetup:
  """A run's batch spec and phases, a maker of its fresh TrainState laid out on the mesh, the state's shapes
  with those shardings (a restore template) and the train step's layouts."""

  spec: pipeline.TrainBatchSpec
  phases: list[Phase]
  create: Callable[[], TrainState]
  abstract: TrainState
  layouts: sharding.StepShardings


def state_setup(config: ConfigDict, method: Trainable, mesh: Mesh | None = None) -> StateSetup:
  """The StateSetup of the method's run on `mesh` (default: the config's mesh).

  `method.init` runs eagerly in `create` (it is traceable, for the shapes);
  its result is laid out on the mesh and the optimizer state of the first
  phase is made there, sharded like the parameters.
  """
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  spec = batch_spec(config, mesh)
  init_rng, run_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  dummy = {"image": np.zeros((2, *spec.image_size, 3), np.uint8)}
  variables = jax.eval_shape(method.init, init_rng, dummy)
  phases = method.phases(spec, variables[0])
  tx = phases[0].tx

  def make_state(params, model_state) -> TrainState:
    return TrainState.create(params, model_state, tx, run_rng)

  shapes = jax.eval_shape(make_state, *variables)
  shardings = sharding.state_shardings(mesh, shapes, config.mesh)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)
  laid_out = jax.jit(make_state, out_shardings=shardings)

  def create() -> TrainState:
    params, model_state = jax.device_get(method.init(init_rng, dummy))
    return laid_out(*jax.device_put((params, model_state), (shardings.params, shardings.model_state)))

  return StateSetup(spec, phases, create, abstract, sharding.step_shardings(mesh, shardings))


def train(config: ConfigDict, workdir: str, method: Trainable, hooks: Sequence[Hook] = (), show_progress: bool = True,
          stop_at: int | None = None) -> tuple[TrainState, dict[int, dict[str, float]]]:
  """Trains the method's phases to their end (or to step `stop_at`, checkpointing there), resuming from
  workdir's latest checkpoint; `hooks` run in every phase, after its own.

  Returns the final state and the host metrics of every step run. A
  non-finite loss term stops the run with NonFiniteLossError naming the step
  and the term; no checkpoint is written after it. SIGTERM (jreid.train.preemption)
  ends the current step, saves a checkpoint, prints one line and raises
  Preempted (a SystemExit with code 143).
  """
  setup = state_setup(config, method)
  run = _Run(config, workdir, setup, setup.phases[-1].stop if stop_at is None else stop_at, show_progress)
  try:
    with run.preemption:
      for phase in setup.phases:
        run.train(dataclasses.replace(phase, hooks=phase.hooks + tuple(hooks)))
  finally:
    run.close()
  if run.unreadable:
    print(f"skipped {len(run.unreadable)} unreadable training images (data.on_bad_image='skip'): "
          "the warnings above name them")
  return run.state, run.history


def restore_state(config: ConfigDict, workdir: str, method: Trainable, step: int | None = None,
                  directory: str = CHECKPOINTS) -> TrainState:
  """The train state of the latest (or given) checkpoint in workdir/directory, for evaluation or export."""
  checkpointer = Checkpointer(os.path.join(workdir, directory))
  try:
    state, _ = checkpointer.restore(state_setup(config, method).abstract, step)
  finally:
    checkpointer.close()
  return state


class _Run:
  """One training run: its state, checkpointer, logs and the host metrics of the steps it ran."""

  def __init__(self, config: ConfigDict, workdir: str, setup: StateSetup, total: int, show_progress: bool):
    self.config, self.setup, self.total = config, setup, total
    self.checkpointer = Checkpointer(os.path.join(workdir, CHECKPOINTS), config.train.max_checkpoints)
    self.data_state = None
    restored = self.checkpointer.restore_newest(setup.abstract)
    if restored is not None:
      self.state, self.data_state = restored
      print(f"resumed from {self.checkpointer.directory} at step {int(self.state.step)}")
    else:
      self.state = setup.create()
    main = jax.process_index() == 0
    self.writer = MetricWriter(workdir, enabled=main)
    self.progress = Progress(int(self.state.step), total, setup.spec.num_ids * setup.spec.num_instances,
                             enabled=show_progress and main)
    self.log = RunLog(self.writer, self.progress, enabled=main)
    self.history = {}
    self.preemption = PreemptionWatch()
    self.unreadable = set()  # (task, record index) of the unreadable images this process's batches replaced
    self._steps = {}  # (loss, tx, variant) -> its compiled step

  def close(self) -> None:
    self.progress.close()
    self.writer.close()
    self.checkpointer.wait()
    self.checkpointer.close()

  def train(self, phase: Phase) -> None:
    """Runs the phase's remaining steps (up to the run's total)."""
    step = int(self.state.step)
    if phase.stop <= step or phase.start >= self.total:
      return
    resumed = step > phase.start
    if not resumed and phase.on_enter is not None:
      self.state = phase.on_enter(self.state, self.log)
    batches = pipeline.CountUnreadable(phase.batches(self.state), self.unreadable)
    try:
      if resumed:
        batches.set_state(self.data_state)
      self._steps_of(phase, batches)
    finally:
      batches.close()

  def _step_for(self, phase: Phase, host_batch: dict):
    """The compiled step of the phase's loss and optimizer for this batch's variant (Phase.variant)."""
    variant = None if phase.variant is None else phase.variant(host_batch)
    key = (phase.loss, phase.tx, variant)
    if key not in self._steps:
      loss = phase.loss if phase.variant is None else functools.partial(phase.loss, variant=variant)
      self._steps[key] = make_train_step(loss, phase.tx, self.setup.layouts)
    return self._steps[key]

  def _steps_of(self, phase: Phase, batches: Batches) -> None:
    pending = None  # (step, device metrics) of the previous step, read one step late so the device keeps busy
    for step in range(int(self.state.step) + 1, min(phase.stop, self.total) + 1):
      host_batch = next(batches)
      train_step = self._step_for(phase, host_batch)
      batch = sharding.global_batch(host_batch, self.setup.layouts.batch)
      self.state, metrics = train_step(self.state, batch)
      if pending is not None:
        self._settle(phase, *pending)
      pending = (step, metrics)
      due = [hook for hook in phase.hooks if hook.due(step)]
      checkpoint = step % self.config.train.checkpoint_every == 0 or step == self.total
      if due or checkpoint:
        self._settle(phase, *pending)
        pending = None
        for hook in due:
          self.state = hook.run(self.state, self.log)
        if checkpoint:
          self.checkpointer.save(step, self.state, batches.get_state())
      if self.preemption.requested(step):
        self._preempt(phase, step, pending, saved=checkpoint, data_state=batches.get_state())
    if pending is not None:
      self._settle(phase, *pending)

  def _preempt(self, phase: Phase, step: int, pending, saved: bool, data_state: dict) -> None:
    """Saves the state after `step` (unless just saved), says so and raises Preempted."""
    if pending is not None:
      self._settle(phase, *pending)
    if not saved:
      self.checkpointer.save(step, self.state, data_state)
    self.checkpointer.wait()
    self.log.line(f"preempted at step {step}: checkpoint saved, resume with the same command")
    raise Preempted(step)

  def _settle(self, phase: Phase, step: int, metrics) -> None:
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    check_finite(step, host)
    self.history[step] = host
    rate = self.progress.update(step, host)
    if step % self.config.train.log_every == 0 or step == self.total:
      self.writer.scalars(step, {**host, "lr": phase.lr(step), "images_per_second": rate, **phase.scalars},
                          "train/")
