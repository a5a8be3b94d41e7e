"""Runs on a Market-layout folder: image_reid with the dataset's own tasks by default (a task it lacks fails
first); the unified and Instruct-ReID models on the tasks that need no captions."""

import os
import pathlib
import subprocess
import sys

from tests.fixtures_layouts import make_market1501

REPO = pathlib.Path(__file__).resolve().parents[1]


def _train(tmp_path, *flags, config="configs/image_reid.py:smoke"):
  root = make_market1501(tmp_path)
  workdir = tmp_path / "run"
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-m", "jreid.main", f"--config={config}", f"--workdir={workdir}",
       "--config.data.name=market1501", f"--config.data.root={root}", "--config.train.num_steps=2", "--config.data.num_ids=3", "--config.data.num_instances=2",
       *flags],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  return result, workdir


def test_market_layout_trains_with_the_default_tasks(tmp_path):
  result, workdir = _train(tmp_path)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  assert "standard" in result.stdout
  assert (workdir / "results.md").exists()


def test_a_task_the_data_lacks_fails_before_training(tmp_path):
  result, workdir = _train(tmp_path, "--config.eval.tasks=('traditional',)")
  assert result.returncode != 0
  assert "config.eval.tasks names 'traditional', but market1501 has tasks ['standard']" in result.stderr
  assert not any(p.name.startswith("checkpoint") or p.name.isdigit() for p in workdir.rglob("*"))
  assert "step" not in result.stdout.lower().replace("steps", "")


def test_more_identities_per_batch_than_the_data_has_fails_in_one_line_before_training(tmp_path):
  result, workdir = _train(tmp_path, "--config.data.num_ids=5")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error: ValueError: config.data.num_ids=5 identities per batch, but market1501 has "
                              "only 3 training identities"), lines[-3:]
  assert not (workdir / "checkpoints").exists()


def test_the_unified_smoke_preset_trains_on_caption_less_photos(tmp_path):
  result, workdir = _train(tmp_path, "--config.eval.tasks=()", config="configs/smoke.py")
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  skipped = [line for line in result.stdout.splitlines() if line.startswith("unified: skipping training task")]
  assert len(skipped) == 7, skipped
  assert "unified: skipping training task 'text': market1501 has no captioned photos" in skipped
  assert "| standard |" in result.stdout and (workdir / "results.md").exists()
  assert '"traditional",\n      "clothes_changing"' in (workdir / "config.json").read_text().replace("\r", "")


def test_the_instruct_smoke_preset_trains_on_caption_less_photos(tmp_path):
  """The README's instruct command on a Market layout: the instruction tasks without captions or templates."""
  result, workdir = _train(tmp_path, "--config.eval.tasks=()", config="configs/instruct.py:smoke")
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  assert "| standard |" in result.stdout and (workdir / "results.md").exists()
