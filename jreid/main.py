"""Train and evaluate a jreid model: `python -m jreid.main --config=configs/unified.py`.

Runs resume by themselves: the same command with the same --workdir continues
from the latest checkpoint (and, if training is complete, only evaluates).
With --config.eval.every=N the tasks are also evaluated every N steps, and
with --config.eval.select=True the final table reports the best of those
(jreid/train/evaluation.py).

Presets pick a config's size: --config=configs/unified.py:PRESET with PRESET
one of cpu (default), smoke or gpu. Any config key is overridden by
--config.KEY=VALUE, e.g. --config.train.num_steps=100 --config.data.root=DIR.
A mistake prints one line; JREID_TRACEBACK=1 shows the full traceback.
"""

from __future__ import annotations

import os
import time

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from jreid import cli

_CONFIG = config_flags.DEFINE_config_file("config", "configs/unified.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"], "train (then evaluate) or evaluate only.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-process: host:port of process 0 (default: "
                                   "from the launcher's environment, see jreid/train/distributed.py).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process: this process's index.")


def default_workdir(config_path: str, preset: str) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
  return os.path.join("runs", name if preset in (name, "cpu") else f"{name}-{preset}")


def main(argv) -> None:
  del argv
  absl_logging.set_verbosity(absl_logging.WARNING)  # keep Orbax's per-save INFO lines off the console
  import jax

  from jreid.train import distributed
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)  # before any device use

  from data_pipelines.datasets import load_data
  from jreid import methods
  from jreid.validate_run import validate_run
  from jreid.eval.tasks import evaluate_tasks, print_summary, task_names
  from jreid.train import evaluation, loop

  config = _CONFIG.value
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename, config.preset)
  os.makedirs(workdir, exist_ok=True)
  started = time.perf_counter()
  print(f"jreid: config {flags.FLAGS['config'].config_filename} (preset {config.preset}), workdir {workdir}, "
        f"devices {jax.devices()}")
  data = load_data(config.data, config.seed)
  print(f"data: {data.name}, {len(data.train)} training images of {data.num_train_ids} identities, "
        f"tasks {', '.join(data.tasks)}")
  task_names(config, data)  # a task the data lacks fails here, before any training step
  method_class = methods.method_class(config.method)
  records = validate_run(config, data.name, data.train, method_class)  # before step 1
  method_class.fit_to_data(config, data.name, records)
  with open(os.path.join(workdir, "config.json"), "w") as f:  # read back by `python -m jreid.convert export`
    f.write(config.to_json_best_effort(indent=2))
  method = methods.build(config, data.num_train_ids, records)
  if _MODE.value == "train":
    state, _ = loop.train(config, workdir, method, hooks=evaluation.evaluation_hooks(config, method, data, workdir))
  else:
    state = loop.restore_state(config, workdir, method)
  state, reported = evaluation.reported_state(config, workdir, method, state)
  results = evaluate_tasks(config, method, state, data, workdir, reported)
  print_summary(results, workdir, time.perf_counter() - started, reported)


if __name__ == "__main__":
  cli.run(main)
