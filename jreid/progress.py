"""Console progress that reads well both in a terminal and in a log file.

On a terminal a `Progress` is a tqdm bar; its `write` lines, Python warnings
and console logging records appear above the bar while one is open. When
stderr is not a terminal (output redirected to a file) there is no bar and no
redraw: one plain line each time another `every_percent` of the total is done,
and one at the end.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import Any, TextIO

from tqdm import tqdm


def is_terminal(stream: TextIO | None = None) -> bool:
  """Whether `stream` (default: stderr, where bars go) is an interactive terminal."""
  stream = sys.stderr if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return bool(isatty and isatty())


def write(line: str, file: TextIO | None = None) -> None:
  """Prints a console line to `file` (default: stdout), above any open bar."""
  file = sys.stdout if file is None else file
  tqdm.write(line, file=file)
  file.flush()


class _AboveBars:
  """A text stream that writes each complete line with tqdm.write, above the open bars."""

  def __init__(self, stream: TextIO):
    self._stream, self._pending = stream, ""

  def write(self, text: str) -> int:
    *lines, self._pending = (self._pending + text).split("\n")
    for line in lines:
      tqdm.write(line, file=self._stream)
    return len(text)

  def flush(self) -> None:
    if self._pending:
      self.write("\n")
    self._stream.flush()


class _Redirect:
  """While bars are open: console logging handlers and Python warnings write above them (outermost bar only)."""

  depth = 0
  saved: list[tuple[logging.StreamHandler, TextIO]] = []
  showwarning = None

  @classmethod
  def enter(cls) -> None:
    cls.depth += 1
    if cls.depth > 1:
      return
    above = {id(s): _AboveBars(s) for s in (sys.stdout, sys.stderr)}
    for handler in _console_handlers():
      cls.saved.append((handler, handler.stream))
      handler.setStream(above[id(handler.stream)])
    cls.showwarning = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
      tqdm.write(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"), file=sys.stderr)

    warnings.showwarning = showwarning

  @classmethod
  def exit(cls) -> None:
    cls.depth -= 1
    if cls.depth:
      return
    for handler, stream in cls.saved:
      handler.setStream(stream)
    cls.saved.clear()
    warnings.showwarning = cls.showwarning


def _console_handlers() -> list[logging.StreamHandler]:
  """The stream handlers writing to stdout or stderr, of the root and absl loggers (absl's wrapped one too)."""
  found = []
  for logger in (logging.getLogger(), logging.getLogger("absl")):
    for handler in logger.handlers:
      handler = getattr(handler, "python_handler", handler)  # absl's ABSLHandler wraps a StreamHandler
      if (isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr)
          and handler not in found):
        found.append(handler)
  return found


class Progress:
  """Progress over `total` units: a tqdm bar on a terminal, else a plain line every `every_percent` percent.

  Args:
    total: units in all. desc: the label. unit: the unit's name. initial: units already done (a resume).
    enabled: False shows nothing (`write` still prints). every_percent: the line interval off a terminal.
    leave: keep the bar on screen when closed. terminal: override the terminal test (default: stderr's).
  """

  def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0, enabled: bool = True,
               every_percent: float = 10, leave: bool = True, terminal: bool | None = None):
    self.total, self.desc, self.unit, self.n = total, desc, unit, initial
    self.enabled, self._every = enabled, max(total * every_percent / 100, 1)
    self._postfix, self._start, self._printed = "", time.perf_counter(), initial
    self._bar = None
    if enabled and (is_terminal() if terminal is None else terminal):
      self._bar = tqdm(initial=initial, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
      _Redirect.enter()

  def update(self, n: int = 1) -> None:
    self.n += n
    if self._bar is not None:
      self._bar.update(n)
    elif self.enabled and self.n - self._printed >= self._every:
      self._line()

  def set_postfix(self, **values: Any) -> None:
    """Values shown after the count (on the bar, or in the next line)."""
    self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())
    if self._bar is not None:
      self._bar.set_postfix(values, refresh=False)

  def write(self, line: str, file: TextIO | None = None) -> None:
    """A console line to `file` (default: stdout), above the bar while it shows."""
    write(line, file)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None
      _Redirect.exit()
    elif self.enabled and self.n != self._printed:
      self._line()
    self.enabled = False

  def _line(self) -> None:
    self._printed = self.n
    elapsed = time.perf_counter() - self._start
    percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
    postfix = f", {self._postfix}" if self._postfix else ""
    print(f"{self.desc}: {self.n}/{self.total} {self.unit}{percent}{postfix}, {elapsed:.0f}s", file=sys.stderr,
          flush=True)

  def __enter__(self) -> Progress:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
