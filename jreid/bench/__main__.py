"""python -m jreid.bench <command> [flags]: one subcommand per benchmark.

`python -m jreid.bench <command> --help` lists a command's flags.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Subcommand -> module with `add_arguments(parser)` and `run(args)`, imported
# only when chosen (so one command's dependencies never break another).
COMMANDS = {
    "cluster": "jreid.bench.cluster",
    "data": "jreid.bench.data",
    "eval": "jreid.bench.evaluation",
    "index": "jreid.bench.index",
    "pseudo_labels": "jreid.bench.pseudo_labels",
    "train_step": "jreid.bench.train_step",
}


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m jreid.bench", description=__doc__, add_help=False,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("command", nargs="?", choices=tuple(COMMANDS))
  args, rest = parser.parse_known_args(argv)
  if args.command is None:
    parser.print_help()
    sys.exit(0 if {"-h", "--help"} & set(rest) else 2)
  module = importlib.import_module(COMMANDS[args.command])
  command = argparse.ArgumentParser(
      prog=f"python -m jreid.bench {args.command}", description=module.__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  module.add_arguments(command)
  module.run(command.parse_args(rest))


if __name__ == "__main__":
  main()
