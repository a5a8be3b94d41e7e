"""A damaged latest checkpoint: one line naming it, then resume from the newest one that restores."""

import os
import shutil

import jax
import numpy as np
import pytest

from configs import image_reid
from jreid import methods
from jreid.train import loop


def _damage(folder, how):
  if how == "missing_state":
    shutil.rmtree(os.path.join(folder, "state"))
  elif how == "missing_metadata":
    os.remove(os.path.join(folder, "state", "_METADATA"))
  else:  # truncate the largest array file of the state
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(folder, "state")) for f in fs]
    biggest = max(files, key=os.path.getsize)
    with open(biggest, "r+b") as f:
      f.truncate(os.path.getsize(biggest) // 2)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, tiny_records):
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=3, num_instances=2)
  config.train.update(num_steps=4, checkpoint_every=1, max_checkpoints=3)
  method = methods.build(config, num_classes=7, train_records=tiny_records)
  state, _ = loop.train(config, str(tmp_path_factory.mktemp("straight")), method, show_progress=False)
  return config, method, state


@pytest.mark.parametrize("how", ["truncated", "missing_metadata", "missing_state"])
def test_resume_falls_back_past_a_damaged_latest_checkpoint(tmp_path, straight, how, capsys):
  config, method, expected = straight
  loop.train(config, str(tmp_path), method, show_progress=False, stop_at=3)
  latest = os.path.join(tmp_path, loop.CHECKPOINTS, "3")
  _damage(latest, how)
  capsys.readouterr()
  resumed, history = loop.train(config, str(tmp_path), method, show_progress=False)
  lines = [l for l in capsys.readouterr().out.splitlines() if "cannot be restored" in l]
  assert len(lines) == 1 and latest in lines[0] and lines[0].endswith("resuming from 2"), lines
  assert sorted(history) == [3, 4]
  for a, b in zip(jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_leftover_tmp_folders_of_an_interrupted_save_are_removed(tmp_path):
  from jreid.train.checkpoint import Checkpointer
  leftover = tmp_path / "7.orbax-checkpoint-tmp-123"
  leftover.mkdir()
  checkpointer = Checkpointer(str(tmp_path))
  checkpointer.close()
  assert not leftover.exists() and checkpointer.latest_step() is None
