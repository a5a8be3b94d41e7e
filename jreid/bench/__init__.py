"""Benchmarks, run as `python -m jreid.bench <command>`."""

import platform


def host_cpu() -> str:
  """The CPU's model name (Linux), else what `platform` knows of it."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()
