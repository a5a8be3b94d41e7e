"""SIGTERM mid-run: the step ends, a checkpoint is saved, exit 143; resuming ends like a run that never stopped.

The test starts this file as a worker (`python tests/test_sigterm.py IMAGES WORKDIR`): it trains a tiny
model, printing each step, and the test sends it SIGTERM once a step has printed. Its checkpoints are
only due at the last step, so the preemption's checkpoint is the only one. The uninterrupted run goes
first, in the test's process, and leaves its compilations in an on-disk cache for the worker and the
resumed run.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 30


def _config():
  from configs import image_reid
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=3, num_instances=2)
  config.train.update(num_steps=STEPS, checkpoint_every=STEPS)
  return config


def _method(config, image_dir):
  from data_pipelines.records import Record
  from jreid import methods
  records = [Record(str(path), pid=int(path.stem.split("_")[0]), camid=int(path.stem.split("_")[1]) % 3)
             for path in sorted(pathlib.Path(image_dir).glob("*.png"))]
  return methods.build(config, 7, records)


def _worker(image_dir, workdir):
  from jreid.train import loop
  from jreid.train.phase import Hook

  def announce(state, log):
    print(f"step {int(state.step)}", flush=True)
    time.sleep(0.05)  # slow enough for the signal to land mid-run
    return state

  config = _config()
  loop.train(config, workdir, _method(config, image_dir), hooks=[Hook(1, announce)], show_progress=False)


@pytest.fixture
def compilation_cache(tmp_path):
  """An on-disk compilation cache for this process and the worker (the environment for it)."""
  cache = {"jax_compilation_cache_dir": str(tmp_path / "jax_cache"), "jax_persistent_cache_min_compile_time_secs": 0.0,
           "jax_persistent_cache_min_entry_size_bytes": 0}
  saved = {name: getattr(jax.config, name) for name in cache}
  for name, value in cache.items():
    jax.config.update(name, value)
  yield {name.upper(): str(value) for name, value in cache.items()}
  for name, value in saved.items():
    jax.config.update(name, value)


def test_sigterm_saves_and_the_resumed_run_matches(tmp_path, compilation_cache):
  from PIL import Image
  from jreid.train import loop
  from jreid.train.checkpoint import Checkpointer
  rng = np.random.default_rng(0)
  for pid in range(7):
    for j in range(2 + pid % 4):
      Image.fromarray(rng.integers(0, 256, (24, 12, 3), dtype=np.uint8)).save(tmp_path / f"{pid}_{j}.png")
  config = _config()
  method = _method(config, tmp_path)
  straight, _ = loop.train(config, str(tmp_path / "straight"), method, show_progress=False)

  workdir = tmp_path / "run"
  env = {**os.environ, **compilation_cache, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
  worker = subprocess.Popen([sys.executable, __file__, str(tmp_path), str(workdir)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    for line in worker.stdout:
      if line.startswith("step "):
        worker.send_signal(signal.SIGTERM)
        break
    out, err = worker.communicate(timeout=120)
  finally:
    worker.kill()
  assert worker.returncode == 143, out[-2000:] + err[-3000:]
  saved = Checkpointer(str(workdir / loop.CHECKPOINTS))
  step = saved.latest_step()
  saved.close()
  assert step is not None and 1 <= step < STEPS
  assert f"preempted at step {step}: checkpoint saved, resume with the same command" in out.splitlines()

  resumed, history = loop.train(config, str(workdir), method, show_progress=False)
  assert sorted(history) == list(range(step + 1, STEPS + 1))
  for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


if __name__ == "__main__":
  _worker(*sys.argv[1:3])
