"""The training loop: data -> jitted step -> guard, logging, checkpoints; resumes itself."""

from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh
from ml_collections import ConfigDict

from data_pipelines import mixing, pipeline
from data_pipelines.records import Record
from jreid.train import sharding
from jreid.train.checkpoint import Checkpointer
from jreid.train.optimizer import make_optimizer
from jreid.train.state import TrainState
from jreid.train.step import check_finite, make_train_step
from jreid.train.writer import MetricWriter, Progress


def batch_spec(config: ConfigDict, mesh: Mesh | None = None) -> pipeline.TrainBatchSpec:
  """The training batch of the config; this process loads its block of rows on `mesh` (default: the
  config's mesh)."""
  data = config.data
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  block, blocks = sharding.process_block(sharding.batch_sharding(mesh), data.num_ids * data.num_instances)
  return pipeline.TrainBatchSpec(
      image_size=tuple(config.model.vision.image_size), num_ids=data.num_ids, num_instances=data.num_instances,
      seed=config.seed, augment=pipeline.AugmentConfig(**data.augment.to_dict()),
      balance_modalities=tuple(data.balance_modalities), process_index=block, process_count=blocks)


def train_stream(config: ConfigDict, method, records: Sequence[Record], spec: pipeline.TrainBatchSpec):
  """The method's endless, checkpointable stream of training batches.

  A method with `train_tasks(records, spec)` (several tasks) gets their mix
  by config.data.mix_mode; otherwise one P x K stream of its rows
  (`train_records(records)` if it has that, else all records) with its
  `companions(rows)` if it has them.
  """
  workers = config.data.num_workers
  if hasattr(method, "train_tasks"):
    return mixing.mixed_dataset(method.train_tasks(records, spec), config.data.mix_mode, config.seed, workers)
  if hasattr(method, "train_records"):
    records = method.train_records(records)
  companions = method.companions(records) if hasattr(method, "companions") else None
  return pipeline.train_dataset(records, spec, num_workers=workers, companions=companions)


def state_setup(config: ConfigDict, method, spec: pipeline.TrainBatchSpec, mesh: Mesh):
  """(create, abstract, tx, schedule): a function making the fresh TrainState laid out on `mesh`, the
  state's shapes with those shardings (a restore template), the optimizer and its schedule.

  `method.init` runs eagerly (it may read pretrained weights from disk); its result is laid out on the
  mesh and the optimizer state is made there, sharded like the parameters.
  """
  init_rng, run_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  dummy = {"image": np.zeros((2, *spec.image_size, 3), np.uint8)}
  variables = jax.eval_shape(method.init, init_rng, dummy)
  tx, schedule = make_optimizer(config.optim, variables[0], config.train.num_steps)

  def make_state(params, model_state) -> TrainState:
    return TrainState.create(params, model_state, tx, run_rng)

  shapes = jax.eval_shape(make_state, *variables)
  shardings = sharding.state_shardings(mesh, shapes, config.mesh)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)
  laid_out = jax.jit(make_state, out_shardings=shardings)

  def create() -> TrainState:
    params, model_state = jax.device_get(method.init(init_rng, dummy))
    return laid_out(*jax.device_put((params, model_state), (shardings.params, shardings.model_state)))

  return create, abstract, tx, schedule


def init_state(config: ConfigDict, method, spec: pipeline.TrainBatchSpec, mesh: Mesh | None = None):
  """A fresh TrainState on `mesh` (default: the config's mesh), the optimizer and its schedule."""
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  create, _, tx, schedule = state_setup(config, method, spec, mesh)
  return create(), tx, schedule


def train(config: ConfigDict, workdir: str, method, records: Sequence[Record], show_progress: bool = True,
          stop_at: int | None = None) -> tuple[TrainState, dict[int, dict[str, float]]]:
  """Trains to config.train.num_steps (or `stop_at`), resuming from workdir's latest checkpoint.

  Returns the final state and the host metrics of every step run. A non-finite loss term stops the run with
  NonFiniteLossError naming the step and the term; no checkpoint is written
  after it.
  """
  mesh = sharding.make_mesh(config.mesh)
  spec = batch_spec(config, mesh)
  create, abstract, tx, schedule = state_setup(config, method, spec, mesh)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.max_checkpoints)
  iterator = iter(train_stream(config, method, records, spec))
  if checkpointer.latest_step() is not None:
    state, data_state = checkpointer.restore(abstract)
    iterator.set_state(data_state)
    print(f"resumed from {checkpointer.directory} at step {int(state.step)}")
  else:
    state = create()
  start, total = int(state.step), config.train.num_steps if stop_at is None else stop_at
  layouts = sharding.step_shardings(mesh, jax.tree.map(lambda x: x.sharding, abstract))
  train_step = make_train_step(method.loss, tx, layouts)
  writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
  progress = Progress(start, total, spec.num_ids * spec.num_instances,
                      enabled=show_progress and jax.process_index() == 0)
  history = {}
  pending = None  # (step, device metrics) of the previous step, read one step late so the device keeps busy

  def settle(pending) -> None:
    step, metrics = pending
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    check_finite(step, host)
    history[step] = host
    rate = progress.update(step, host)
    if step % config.train.log_every == 0 or step == total:
      writer.scalars(step, {**host, "lr": float(schedule(step - 1)), "images_per_second": rate}, "train/")

  try:
    for step in range(start + 1, total + 1):
      batch = sharding.global_batch(next(iterator), layouts.batch)
      state, metrics = train_step(state, batch)
      if pending is not None:
        settle(pending)
      pending = (step, metrics)
      if step % config.train.checkpoint_every == 0 or step == total:
        settle(pending)
        pending = None
        checkpointer.save(step, state, iterator.get_state())
    if pending is not None:
      settle(pending)
  finally:
    progress.close()
    writer.close()
    checkpointer.wait()
    checkpointer.close()
    if hasattr(iterator, "close"):
      iterator.close()
  return state, history


def restore_state(config: ConfigDict, workdir: str, method, step: int | None = None) -> TrainState:
  """The train state of workdir's latest (or given) checkpoint, for evaluation or export."""
  mesh = sharding.make_mesh(config.mesh)
  _, abstract, _, _ = state_setup(config, method, batch_spec(config, mesh), mesh)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
  try:
    state, _ = checkpointer.restore(abstract, step)
  finally:
    checkpointer.close()
  return state

