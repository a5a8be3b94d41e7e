"""Two processes x 2 CPU devices (launch.sh, jax.distributed on localhost) train like one process.

The test starts `launch.sh --nproc 2 --cpu_devices 2 --module test_multiprocess`; run as that module,
this file is the worker: it trains a few steps on a data=2 x fsdp=2 mesh spanning both processes and
process 0 writes the losses and the gathered parameters.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 3


def _config(shape):
  from configs import image_reid
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=4, num_instances=2)
  config.optim.eps = 1e-3  # rounding-noise gradients stay near zero (see tests/test_sharding.py)
  config.train.update(num_steps=STEPS, checkpoint_every=100)
  config.mesh.shape.update(shape)
  config.mesh.fsdp_min_size = 0
  return config


def _records(image_dir):
  from data_pipelines.records import Record
  return [Record(str(path), pid=int(path.stem.split("_")[0]), camid=int(path.stem.split("_")[1]) % 3)
          for path in sorted(pathlib.Path(image_dir).glob("*.png"))]


def _train(shape, image_dir, workdir):
  from jreid import methods
  from jreid.train import loop
  config = _config(shape)
  return loop.train(config, workdir, methods.build(config, 7, _records(image_dir)), show_progress=False)


def _worker(image_dir, out_dir):
  from jreid.train import distributed
  launch = distributed.initialize()
  import jax
  from jax.experimental import multihost_utils
  assert launch is not None and launch.source == "torchrun", launch
  assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
  state, history = _train(dict(data=2, fsdp=2), image_dir, os.path.join(out_dir, "run"))
  params = multihost_utils.process_allgather(state.params, tiled=True)
  if jax.process_index() == 0:
    np.savez(os.path.join(out_dir, "params.npz"), *jax.tree_util.tree_leaves(params))
    with open(os.path.join(out_dir, "history.json"), "w") as f:
      json.dump(history, f)


def test_two_processes_match_one(tmp_path):
  import jax
  from PIL import Image
  from jreid import methods
  from jreid.train import loop
  rng = np.random.default_rng(0)
  for pid in range(7):
    for j in range(2 + pid % 4):
      Image.fromarray(rng.integers(0, 256, (24, 12, 3), dtype=np.uint8)).save(tmp_path / f"{pid}_{j}.png")
  out = tmp_path / "out"
  out.mkdir()
  env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}"}
  env.pop("XLA_FLAGS", None)
  run = subprocess.run(["bash", str(REPO / "launch.sh"), "--nproc", "2", "--cpu_devices", "2", "--module",
                        "test_multiprocess", "--", str(tmp_path), str(out)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

  state, history = _train(dict(data=1), tmp_path, str(tmp_path / "single"))
  distributed = {int(k): v for k, v in json.loads((out / "history.json").read_text()).items()}
  assert sorted(distributed) == list(range(1, STEPS + 1))
  for step, metrics in history.items():
    np.testing.assert_allclose(distributed[step]["loss"], metrics["loss"], rtol=1e-5, err_msg=f"step {step}")
  with np.load(out / "params.npz") as saved:
    gathered = [saved[f"arr_{i}"] for i in range(len(saved.files))]
  leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.params)]
  assert len(gathered) == len(leaves)
  for a, b in zip(leaves, gathered):
    np.testing.assert_allclose(b, a, atol=1e-5)
  # The two-process checkpoint restores in this one-device process.
  config = _config(dict(data=1))
  restored = loop.restore_state(config, str(out / "run"), methods.build(config, num_classes=7))
  for a, b in zip(gathered, jax.tree_util.tree_leaves(restored.params)):
    np.testing.assert_array_equal(np.asarray(b), a)


if __name__ == "__main__":
  _worker(*sys.argv[1:3])
