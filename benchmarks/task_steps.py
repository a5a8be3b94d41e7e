"""The unified model's train step on one batch of each task, with and without its step variant.

  PYTHONPATH=. python benchmarks/task_steps.py [--preset cpu] [--steps 5] [--whole]

Each task's batch (data.mix_mode 'per_batch': one task per batch, the `small` synthetic set of seed 0) is
timed over --steps steps after compilation, as the trainer runs it: compiled for the parts the task uses
(InstructReID.step_variant), or with --whole for the whole network. Prints the compile time of each step
built and the median step time per task (benchmarks/LEARNING.md).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import numpy as np

from configs import unified
from data_pipelines import mixing, synthetic
from data_pipelines.datasets import training_records
from jreid import methods
from jreid.train import loop, sharding
from jreid.train.step import make_train_step


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--preset", default="cpu", choices=unified.PRESETS)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--whole", action="store_true", help="every batch through the whole network")
  args = parser.parse_args()
  config = unified.get_config(args.preset)
  config.data.num_workers = 0
  data = synthetic.load(size=config.data.size, seed=0)
  records = training_records(data, config.data.train_modalities)
  method = methods.build(config, data.num_train_ids, records)
  setup = loop.state_setup(config, method, sharding.make_mesh(config.mesh, jax.devices()[:1]))
  phase, state, steps = setup.phases[0], setup.create(), {}
  mean = []
  for index, task in enumerate(method.train_tasks(records, setup.spec)):
    host = next(iter(mixing.mixed_dataset([task], "per_batch", config.seed)))
    host["task"] = np.full_like(host["task"], index)
    batch = sharding.global_batch(host, setup.layouts.batch)
    variant = None if args.whole else method.step_variant(host)
    if variant not in steps:
      start = time.perf_counter()
      loss = phase.loss if variant is None else functools.partial(phase.loss, variant=variant)
      steps[variant] = make_train_step(loss, phase.tx, setup.layouts).lower(state, batch).compile()
      print(f"compiled {variant or 'the whole network'} in {time.perf_counter() - start:.1f} s")
    state, _ = steps[variant](state, batch)
    jax.block_until_ready(state)
    times = []
    for _ in range(args.steps):
      start = time.perf_counter()
      state, _ = steps[variant](state, batch)
      jax.block_until_ready(state)
      times.append(time.perf_counter() - start)
    mean.append(statistics.median(times))
    print(f"{task.name:22s} {1e3 * mean[-1]:8.1f} ms")
  print(f"{'mean over the tasks':22s} {1e3 * statistics.mean(mean):8.1f} ms")


if __name__ == "__main__":
  main()
