"""What the training loop drives: phases of steps, each with its step function, batches, schedule and hooks.

A run is a list of phases that tile the global step count: a supervised
method has one ('train', steps 0 to config.train.num_steps); ITKM has one per
clustering round of Stages I and III and one for Stage II. All phases update
one TrainState, so their optimizers must share one optimizer-state structure
(the state is made with the first phase's). Phases with the same loss and
optimizer share one compiled step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable, Mapping, Protocol

import jax
import optax

from data_pipelines.pipeline import TrainBatchSpec
from jreid.train.state import TrainState
from jreid.train.writer import RunLog

# loss(params, model_state, batch, rng) -> (loss, (terms, new_model_state))
LossFn = Callable[[Any, Any, dict, jax.Array], tuple[jax.Array, tuple[dict, Any]]]
# A hook reads (and may replace) the state between steps; it logs through the run's log.
HookFn = Callable[[TrainState, RunLog], TrainState]


class Batches(Protocol):
  """A checkpointable stream of host batches (a grain DatasetIterator is one)."""

  def __next__(self) -> dict: ...

  def get_state(self) -> dict: ...

  def set_state(self, state: dict) -> None: ...

  def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Hook:
  """`run` after every global step that is a multiple of `every`."""

  every: int
  run: HookFn

  def due(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0


@dataclasses.dataclass(frozen=True)
class Phase:
  """Global steps start + 1 .. stop of a run.

  loss, tx: the step function's loss and optimizer. schedule: the learning
  rate of tx, counted from global step `schedule_start` (for the logs).
  batches(state): the phase's stream, made after `on_enter` (and again on
  resuming inside the phase, then set to the checkpoint's position), so it
  may depend on the state. on_enter(state, log): runs when the phase starts
  (not when a run resumes inside it) and returns the state to train on.
  hooks: run after their steps, before a checkpoint is written. scalars:
  constants logged with the phase's training metrics. variant(host batch):
  a hashable that the loss takes as its keyword `variant` (what parts of the
  model the batch uses); the step is compiled once per value. It must give
  every process the same value for its block of a batch.
  """

  name: str
  start: int
  stop: int
  loss: LossFn
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  batches: Callable[[TrainState], Batches]
  schedule_start: int = 0
  on_enter: HookFn | None = None
  hooks: tuple[Hook, ...] = ()
  scalars: Mapping[str, float] = dataclasses.field(default_factory=dict)
  variant: Callable[[dict], Hashable] | None = None

  def lr(self, step: int) -> float:
    """The learning rate of global step `step` (1-based)."""
    return float(self.schedule(step - 1 - self.schedule_start))


class Trainable(Protocol):
  """What the loop needs of a method (jreid.methods.base.Method is one)."""

  def init(self, rng: jax.Array, batch: dict) -> tuple[Any, Any]: ...

  def phases(self, spec: TrainBatchSpec, params: Any) -> list[Phase]: ...
