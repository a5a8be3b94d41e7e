"""Shared pytest setup: absl flags parsed (grain workers need it), CPU only."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from data_pipelines.records import Record  # noqa: E402


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory):
  """Training records of 7 identities (2..5 random 24x12 PNGs each, rgb and ir)."""
  root = tmp_path_factory.mktemp("tiny_images")
  rng = np.random.default_rng(0)
  out = []
  for pid in range(7):
    for j in range(2 + pid % 4):
      path = root / f"{pid}_{j}.png"
      Image.fromarray(rng.integers(0, 256, (24, 12, 3), dtype=np.uint8)).save(path)
      out.append(Record(str(path), pid=100 + pid, camid=j % 3, modality="rgb" if j % 2 == 0 else "ir"))
  return out
