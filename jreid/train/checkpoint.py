"""Atomic, resumable checkpoints of the train state and the data iterator state."""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Orbax CheckpointManager holding {'state': TrainState, 'data': grain iterator state}.

  Orbax writes each step to a temporary directory and renames it when complete,
  so an interrupted save never shadows the previous checkpoint.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    self.directory = os.path.abspath(directory)
    if jax.process_index() == 0 and os.path.isdir(self.directory):  # leftovers of interrupted saves
      for name in os.listdir(self.directory):
        if ".orbax-checkpoint-tmp" in name:
          shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_state: dict) -> None:
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                     data=ocp.args.JsonSave(data_state)), force=True)

  def restore(self, state_template: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores (state, data_state) at `step` (default: the latest) onto the template's shardings.

    The template holds arrays or ShapeDtypeStructs with shardings, on any mesh:
    a checkpoint saved on one device count restores onto another.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_template)
    restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                   data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def restore_newest(self, state_template: Any) -> tuple[Any, dict] | None:
    """Restores the newest checkpoint that restores, newest first, or None when there are none.

    A damaged one (truncated array file, missing `_METADATA` or `state/`) is reported in one
    line naming its step folder and the reason, renamed `<step>.damaged`, and the next older
    one is tried; when every kept checkpoint is damaged this raises, rather than silently
    training from scratch.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        return self.restore(state_template, step)
      except Exception as error:  # orbax raises many types for a damaged folder
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        folder = os.path.join(self.directory, str(step))
        if jax.process_index() == 0:  # out of orbax's sight, kept for inspection
          shutil.rmtree(folder + ".damaged", ignore_errors=True)
          os.rename(folder, folder + ".damaged")
        then = f"resuming from {steps[i + 1]}" if i + 1 < len(steps) else "no older checkpoint"
        print(f"checkpoint {folder} cannot be restored ({reason}; moved to {step}.damaged): {then}")
        self._manager.reload()
    if steps:
      raise RuntimeError(f"no checkpoint in {self.directory} restores; move the folder aside to start afresh")
    return None

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
