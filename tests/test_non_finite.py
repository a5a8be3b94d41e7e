"""A run whose loss turns NaN stops with one line naming the step and the first non-finite loss term."""

import os
import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_a_huge_learning_rate_stops_with_one_line_naming_the_term(tmp_path, tiny_synthetic):
  shutil.copytree(tiny_synthetic, tmp_path / "data" / "synthetic")  # the session's tiny set (conftest.py)
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", JREID_DATA_DIR=str(tmp_path / "data"))
  env.pop("JREID_TRACEBACK", None)
  result = subprocess.run(
      [sys.executable, "-m", "jreid.main", "--config=configs/image_reid.py:smoke", f"--workdir={tmp_path / 'run'}",
       "--config.train.num_steps=6", "--config.train.checkpoint_every=1", "--config.optim.lr=1e30",
       "--config.optim.warmup_init_lr=1e30", "--config.eval.tasks=('traditional',)"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines() if not line.startswith("train: ")]  # progress lines
  assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr[-3000:]
  step = int(lines[0].split("non-finite loss at step ")[1].split(":")[0])
  assert lines[0].split(f"step {step}: ")[1].startswith(("id=nan", "id=inf", "triplet=nan", "triplet=inf")), lines[0]
  saved = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit())
  assert saved and max(saved) < step  # nothing saved from the broken step on
