"""Multi-task mixing: ratios per batch and within batches, labels, resume, host slices."""

import dataclasses

import numpy as np
import pytest

from data_pipelines import mixing
from data_pipelines import pipeline


def _spec(**kwargs):
  augment = pipeline.AugmentConfig(padding=2, erasing=0.0)
  return pipeline.TrainBatchSpec(image_size=(16, 8), num_ids=4, num_instances=2, augment=augment, **kwargs)


@pytest.fixture
def tasks(tiny_records):
  """Three tasks over parts of the tiny set (7, 5 and 4 identities), ratios 5:3:2."""
  pids = sorted({r.pid for r in tiny_records})
  parts = [tiny_records, [r for r in tiny_records if r.pid in pids[:5]],
           [r for r in tiny_records if r.pid in pids[3:]]]
  return [mixing.MixTask(name, part, ratio, _spec(seed=seed))
          for seed, (name, part, ratio) in enumerate(zip(("a", "b", "c"), parts, (5.0, 3.0, 2.0)))]


def _batches(dataset, count):
  it = iter(dataset)
  return [next(it) for _ in range(count)]


def test_per_batch_ratios_hold_over_many_batches(tasks):
  batches = _batches(mixing.mixed_dataset(tasks, "per_batch", seed=1), 400)
  assert all(len(np.unique(b["task"])) == 1 for b in batches)
  counts = np.bincount([b["task"][0] for b in batches], minlength=3)
  p = np.array([0.5, 0.3, 0.2])
  sigma = np.sqrt(400 * p * (1 - p))
  assert np.all(np.abs(counts - 400 * p) < 4 * sigma), counts


def test_mixed_batches_hold_every_task_in_proportion(tasks):
  offsets = mixing.label_offsets(tasks)
  np.testing.assert_array_equal(offsets, [0, 7, 12, 16])
  np.testing.assert_array_equal(mixing.ids_per_task([5, 3, 2], 4), [2, 1, 1])
  for batch in _batches(mixing.mixed_dataset(tasks, "mixed"), 5):
    assert batch["image"].shape == (8, 16, 8, 3)
    np.testing.assert_array_equal(batch["task"], [0, 0, 0, 0, 1, 1, 2, 2])
    for t in range(3):
      labels = batch["label"][batch["task"] == t]
      assert np.all((labels >= offsets[t]) & (labels < offsets[t + 1]))
      assert len(np.unique(labels)) == mixing.ids_per_task([5, 3, 2], 4)[t]


def test_largest_remainders_sum_to_the_batch():
  for ratios in ([1, 1, 1], [0.7, 0.2, 0.1], [10, 1]):
    counts = mixing.ids_per_task(ratios, 16)
    assert counts.sum() == 16
    assert np.all(np.abs(counts - 16 * np.array(ratios) / sum(ratios)) < 1)


@pytest.mark.parametrize("mode", mixing.MIX_MODES)
def test_resume_of_a_mixed_stream_gives_the_same_batches(tasks, mode):
  it = iter(mixing.mixed_dataset(tasks, mode, seed=2))
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(4)]
  resumed = iter(mixing.mixed_dataset(tasks, mode, seed=2))
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    assert sorted(got) == sorted(want)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_host_slices_of_a_mixed_batch(tasks):
  full = _batches(mixing.mixed_dataset(tasks, "mixed"), 2)
  halves = [_batches(mixing.mixed_dataset(
      [dataclasses.replace(t, spec=dataclasses.replace(t.spec, process_index=i, process_count=2)) for t in tasks],
      "mixed"), 2) for i in range(2)]
  for b in range(2):
    for key in full[b]:
      np.testing.assert_array_equal(np.concatenate([halves[0][b][key], halves[1][b][key]]), full[b][key])


def test_tasks_must_share_the_batch_shape(tasks):
  tasks[1] = dataclasses.replace(tasks[1], spec=dataclasses.replace(tasks[1].spec, num_ids=2, num_instances=4))
  with pytest.raises(ValueError, match="'b' has num_ids=2"):
    mixing.mixed_dataset(tasks)


def test_bad_mixing_configs(tasks):
  with pytest.raises(ValueError, match="mode"):
    mixing.mixed_dataset(tasks, "round_robin")
  with pytest.raises(ValueError, match="ratio must be positive"):
    mixing.mixed_dataset([dataclasses.replace(tasks[0], ratio=0.0)])
  with pytest.raises(ValueError, match="'c': ratio 0.1 gives it no identity"):
    mixing.mixed_dataset(tasks[:2] + [dataclasses.replace(tasks[2], ratio=0.1)], "mixed")
