"""data.on_bad_image on a Market-layout folder with one corrupt training JPEG: 'skip' trains and counts, 'fail' stops."""

import json
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

from data_pipelines import images, pipeline
from data_pipelines.records import Record
from tests.fixtures_layouts import make_market1501

REPO = pathlib.Path(__file__).resolve().parents[1]
CORRUPT = "bounding_box_train/0002_c1s1_000451_03.jpg"


def _train(tmp_path, policy, num_workers=0):
  root = make_market1501(tmp_path)
  image = root / CORRUPT
  image.write_bytes(image.read_bytes()[:len(image.read_bytes()) // 2])  # a truncated download
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  env.pop("JREID_TRACEBACK", None)
  result = subprocess.run(
      [sys.executable, "-m", "jreid.main", "--config=configs/image_reid.py:smoke", f"--workdir={tmp_path / 'run'}",
       "--config.data.name=market1501", f"--config.data.root={root}", "--config.train.num_steps=3",
       "--config.data.num_ids=3", "--config.data.num_instances=2", f"--config.data.on_bad_image={policy}",
       f"--config.data.num_workers={num_workers}"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  return result, str(image)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skip_trains_warns_once_naming_the_file_and_prints_the_count(tmp_path, num_workers):
  result, image = _train(tmp_path, "skip", num_workers)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  output = result.stdout + result.stderr
  warnings = [line for line in output.splitlines() if image in line]
  # Every batch holds it; the smoke preset loads 2 batches at a time in each process (2 threads), in the main
  # process or in each of 2 worker processes: warned once all the same.
  assert len(warnings) == 1 and "on_bad_image='skip'" in warnings[0], warnings
  assert "skipped 1 unreadable training images" in result.stdout
  assert "| standard |" in result.stdout


def test_fail_stops_with_one_line_naming_the_file(tmp_path):
  result, image = _train(tmp_path, "fail")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "cannot read image" in lines[0] and image in lines[0], result.stderr[-3000:]
  assert "Traceback" not in result.stderr and "skipped" not in result.stdout


def test_threads_failing_on_the_same_file_at_once_warn_once(monkeypatch):
  """grain loads batches in several threads: two that fail on the same file together log it once (each
  warned when both had checked the bad set before either marked it)."""
  records = [Record(f"/data/{pid}_{j}.jpg", pid=pid, camid=j) for pid in (1, 2) for j in range(3)]
  both_reading = threading.Barrier(2, timeout=10)

  class Source:
    def __init__(self):
      self.records = records

    def image(self, index, size):
      if index == 0:
        both_reading.wait()  # the two threads are inside the decode of the bad file at the same time
        raise images.ImageError(f"cannot read image {records[0].path}", records[0].path)
      return np.zeros((*size, 3), np.uint8)

  warned = []
  monkeypatch.setattr(pipeline.logging, "warning", lambda message, *args: warned.append(message % args))
  rows = pipeline.TaskRows(Source(), pipeline.TrainBatchSpec(image_size=(8, 4), num_ids=1, num_instances=2))
  loads = [threading.Thread(target=rows.load, args=(np.array([0, 1]), batch, range(2))) for batch in range(2)]
  for load in loads:
    load.start()
  for load in loads:
    load.join()
  assert len(warned) == 1 and records[0].path in warned[0], warned


def test_the_count_of_unreadable_images_survives_a_checkpoint():
  """The count's (task, record) pairs travel in the stream's state: a resumed run counts those met before."""

  class Stream:
    def __init__(self):
      self.state = {"position": 0}

    def __next__(self):
      self.state = {"position": self.state["position"] + 1}
      return {"unreadable": np.array([-1, 7], np.int32), "task": np.array([0, 1], np.int32)}

    def get_state(self):
      return dict(self.state)

    def set_state(self, state):
      self.state = state

  before = pipeline.CountUnreadable(Stream(), set())
  next(before)
  saved = json.loads(json.dumps(before.get_state()))  # as the checkpoint's JSON holds it
  resumed = pipeline.CountUnreadable(Stream(), set())
  resumed.set_state(saved)
  assert resumed.seen == {(1, 7)}
  assert resumed.batches.state == {"position": 1}  # the stream gets its own state back, without the count
  next(resumed)
  assert resumed.seen == {(1, 7)}
