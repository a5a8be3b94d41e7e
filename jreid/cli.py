"""Run a command-line tool (absl or argparse): `--help` exits 0, and a user mistake
(bad config key or value, missing file or folder) prints one line and exits 1;
set JREID_TRACEBACK=1 for the full traceback."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from absl import app

TRACEBACK_ENV = "JREID_TRACEBACK"
HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")
USER_ERRORS = (KeyError, ValueError, TypeError, FileNotFoundError, NotADirectoryError, FileExistsError,
               IsADirectoryError, PermissionError, FloatingPointError)


def one_line(error: BaseException) -> str:
  """The error's message on one line, a KeyError's escaped "Did you mean" hint included."""
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  lines = [line.strip(" '\"") for line in text.splitlines() if line.strip(" '\"")]
  return f"{type(error).__name__}: {'; '.join(lines)}"


def guarded(command: Callable[[], Any], user_errors: tuple[type[BaseException], ...] = ()) -> Any:
  """command(), a user mistake (USER_ERRORS or user_errors) exiting 1 with one line unless $JREID_TRACEBACK is set."""
  if os.environ.get(TRACEBACK_ENV):
    return command()
  try:
    return command()
  except (*USER_ERRORS, *user_errors) as error:
    print(f"error: {one_line(error)} (set {TRACEBACK_ENV}=1 for the traceback)", file=sys.stderr)
    sys.exit(1)


def run(main: Callable) -> None:
  """app.run(main) with one-line user errors (see guarded) and a zero exit for --help."""
  try:
    guarded(lambda: app.run(main))
  except SystemExit as exit_:
    if exit_.code == 1 and any(arg in HELP_FLAGS for arg in sys.argv[1:]):
      sys.exit(0)
    raise
