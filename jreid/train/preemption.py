"""SIGTERM as a preemption notice: the training loop finishes its step, saves a checkpoint and exits 143.

One process: a SIGTERM handler sets a flag that the loop reads after every
step. Several processes (jax.distributed): JAX's preemption service catches
SIGTERM on any host and agrees with all hosts on the step at which they stop
together (multihost_utils.reached_preemption_sync_point), so their collective
checkpoint save lines up. With the service disabled, SIGTERM keeps its default
action there.
"""

from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils

EXIT_CODE = 128 + signal.SIGTERM  # 143, what schedulers expect of a process that ends on SIGTERM


class Preempted(SystemExit):
  """Training stopped at `step` on SIGTERM, after saving a checkpoint there; exits the program with 143."""

  def __init__(self, step: int):
    super().__init__(EXIT_CODE)
    self.step = step


class PreemptionWatch:
  """A context that watches for SIGTERM while training; `requested(step)` after each step says whether to stop.

  One process watches only from the main thread (where Python runs signal
  handlers); elsewhere SIGTERM keeps its action. On exit the previous SIGTERM
  handler is back.
  """

  def __init__(self):
    self._received = False
    self._installed, self._previous = False, None
    self._synced = jax.distributed.is_initialized()
    self._service = self._synced and jax.config.jax_enable_preemption_service

  def __enter__(self) -> PreemptionWatch:
    if not self._synced and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
      self._installed = True
    return self

  def __exit__(self, *exc) -> None:
    if self._installed:  # a handler set outside Python reads as None and comes back as the default
      signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
      self._installed = False

  def _on_sigterm(self, signum, frame) -> None:
    del signum, frame
    self._received = True

  def requested(self, step: int) -> bool:
    """Whether to stop after `step`; with several processes, call it at every step on every process."""
    if not self._synced:
      return self._received
    return self._service and multihost_utils.reached_preemption_sync_point(step)
