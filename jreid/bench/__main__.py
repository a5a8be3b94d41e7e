"""python -m jreid.bench <command> [flags]: one subcommand per benchmark."""

from __future__ import annotations

import argparse
from typing import Sequence

from jreid.bench import data, evaluation

# Subcommand -> module with `add_arguments(parser)` and `run(args)`.
COMMANDS = {"data": data, "eval": evaluation}


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="python -m jreid.bench",
                                   description=__doc__)
  commands = parser.add_subparsers(dest="command", required=True)
  for name, module in COMMANDS.items():
    module.add_arguments(commands.add_parser(
        name, help=module.__doc__.splitlines()[0],
        description=module.__doc__))
  args = parser.parse_args(argv)
  COMMANDS[args.command].run(args)


if __name__ == "__main__":
  main()
