"""data.on_bad_image on a Market-layout folder with one corrupt training JPEG: 'skip' trains and counts, 'fail' stops."""

import os
import pathlib
import subprocess
import sys

from tests.fixtures_layouts import make_market1501

REPO = pathlib.Path(__file__).resolve().parents[1]
CORRUPT = "bounding_box_train/0002_c1s1_000451_03.jpg"


def _train(tmp_path, policy):
  root = make_market1501(tmp_path)
  image = root / CORRUPT
  image.write_bytes(image.read_bytes()[:len(image.read_bytes()) // 2])  # a truncated download
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  env.pop("JREID_TRACEBACK", None)
  result = subprocess.run(
      [sys.executable, "-m", "jreid.main", "--config=configs/image_reid.py:smoke", f"--workdir={tmp_path / 'run'}",
       "--config.data.name=market1501", f"--config.data.root={root}", "--config.train.num_steps=3",
       "--config.data.num_ids=3", "--config.data.num_instances=2", f"--config.data.on_bad_image={policy}"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  return result, str(image)


def test_skip_trains_warns_once_naming_the_file_and_prints_the_count(tmp_path):
  result, image = _train(tmp_path, "skip")
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  output = result.stdout + result.stderr
  warnings = [line for line in output.splitlines() if image in line]
  assert len(warnings) == 1 and "on_bad_image='skip'" in warnings[0], warnings  # every batch holds it: warned once
  assert "skipped 1 unreadable training images" in result.stdout
  assert "| standard |" in result.stdout


def test_fail_stops_with_one_line_naming_the_file(tmp_path):
  result, image = _train(tmp_path, "fail")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "cannot read image" in lines[0] and image in lines[0], result.stderr[-3000:]
  assert "Traceback" not in result.stderr and "skipped" not in result.stdout
