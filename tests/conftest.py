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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """The tiny synthetic set, with JREID_DATA_DIR (its cache and the tokenizers') in a fresh folder for the module."""
  from data_pipelines import synthetic
  previous = os.environ.get("JREID_DATA_DIR")
  os.environ["JREID_DATA_DIR"] = str(tmp_path_factory.mktemp("jreid_data"))
  try:
    yield synthetic.load(size="tiny", seed=0, num_workers=1)
  finally:
    if previous is None:
      del os.environ["JREID_DATA_DIR"]
    else:
      os.environ["JREID_DATA_DIR"] = previous
