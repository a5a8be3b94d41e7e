"""Scalars to TensorBoard event files, a console progress bar, and the log hooks write to."""

from __future__ import annotations

import os
import time

from tensorboardX import SummaryWriter

from jreid import progress


class MetricWriter:
  """Writes scalars to DIR/tensorboard (readable by TensorBoard); one writer per run."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.directory = os.path.join(workdir, "tensorboard")
    self._writer = SummaryWriter(self.directory) if enabled else None

  def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_scalar(f"{prefix}{name}", float(value), step)

  def text(self, step: int, name: str, value: str) -> None:
    if self._writer is not None:
      self._writer.add_text(name, value, step)

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


class Progress:
  """Progress over training steps showing loss and images/s (a bar on a terminal, else a line every 10%)."""

  def __init__(self, start: int, total: int, batch_size: int, enabled: bool = True):
    self._bar = progress.Progress(total, "train", "step", initial=start, enabled=enabled)
    self._batch_size = batch_size
    self._last_step, self._last_time = start, time.perf_counter()
    self._rate = None

  def update(self, step: int, metrics: dict[str, float]) -> float:
    """Advances the bar to `step`; returns images/s, smoothed over about the last 20 updates."""
    now = time.perf_counter()
    rate = (step - self._last_step) * self._batch_size / max(now - self._last_time, 1e-9)
    self._rate = rate if self._rate is None else 0.95 * self._rate + 0.05 * rate
    self._bar.set_postfix(loss=f"{metrics['loss']:.4f}", img_s=f"{self._rate:.0f}")
    self._bar.update(step - self._last_step)
    self._last_step, self._last_time = step, now
    return self._rate

  def write(self, line: str) -> None:
    """A console line (above the bar while it shows)."""
    self._bar.write(line)

  def close(self) -> None:
    self._bar.close()


class RunLog:
  """What hooks write to: TensorBoard scalars and console lines (process 0 only)."""

  def __init__(self, writer: MetricWriter, progress: Progress, enabled: bool = True):
    self._writer, self._progress, self._enabled = writer, progress, enabled

  def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
    self._writer.scalars(step, values, prefix)

  def line(self, text: str) -> None:
    if self._enabled:
      self._progress.write(text)
