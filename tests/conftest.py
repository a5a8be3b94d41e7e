"""Shared pytest setup: absl flags parsed (grain workers need it), CPU only, one compilation cache."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _session_compilation_cache() -> None:
  """An on-disk JAX compilation cache for this test session, in this process and (through the environment)
  in the processes the tests start, kept only for the session.

  Most tests train the same tiny presets: each run compiled the same ~200 programs (the eager ops of the
  model's random init, the train and evaluation steps), 20-25 s of a 40 s smoke run on 2 cores. A cache hit
  is the executable the same program compiles to, so what the tests check is unchanged. A cache set from
  outside (JAX_COMPILATION_CACHE_DIR) is left as it is: so pytest-xdist's workers, started by the main pytest
  process after it ran this, share its cache (and it removes the folder at the end).
  """
  if "JAX_COMPILATION_CACHE_DIR" in os.environ:
    return
  folder = tempfile.mkdtemp(prefix="jreid-tests-jax-cache-")
  atexit.register(shutil.rmtree, folder, ignore_errors=True)
  os.environ.update(JAX_COMPILATION_CACHE_DIR=folder, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


_session_compilation_cache()

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")))
jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                  int(os.environ.get("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")))

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


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
  """A `synthetic` cache folder holding the tiny set (seed 0), generated once for the session: copy it into a
  JREID_DATA_DIR instead of generating the set again there (5 s each time on 2 cores)."""
  from data_pipelines import synthetic
  folder = tmp_path_factory.mktemp("tiny_synthetic") / "synthetic"
  synthetic.load(root=str(folder), size="tiny", seed=0, num_workers=1)
  return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_synthetic):
  """The tiny synthetic set, with JREID_DATA_DIR (its cache and the tokenizers') in a fresh folder for the module;
  the set is a copy of the session's `tiny_synthetic`."""
  from data_pipelines import synthetic
  previous = os.environ.get("JREID_DATA_DIR")
  os.environ["JREID_DATA_DIR"] = str(tmp_path_factory.mktemp("jreid_data"))
  shutil.copytree(tiny_synthetic, os.path.join(os.environ["JREID_DATA_DIR"], "synthetic"))
  try:
    yield synthetic.load(size="tiny", seed=0, num_workers=1)
  finally:
    if previous is None:
      del os.environ["JREID_DATA_DIR"]
    else:
      os.environ["JREID_DATA_DIR"] = previous
