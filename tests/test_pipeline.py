"""P x K sampling and the grain training pipeline (determinism and resume)."""

import numpy as np
import pytest

from data_pipelines import pipeline
from data_pipelines.sampling import PKBatchPlan


def test_pk_batches_have_p_ids_k_images_and_epoch_covers_all_ids():
  labels = np.repeat(np.arange(10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  plan = PKBatchPlan(labels, num_ids=4, num_instances=3, seed=1)
  epoch = plan.epoch(0)
  assert epoch.shape == (3, 12)
  for batch in epoch:
    ids, counts = np.unique(labels[batch], return_counts=True)
    assert len(ids) == 4 and np.all(counts == 3)
  assert set(labels[epoch.ravel()]) == set(range(10))
  # Identities with at least K images never repeat an image within a batch.
  for batch in epoch:
    for pid in np.unique(labels[batch]):
      rows = batch[labels[batch] == pid]
      if np.sum(labels == pid) >= 3:
        assert len(set(rows)) == 3
  assert not np.array_equal(plan.epoch(0), plan.epoch(1))
  np.testing.assert_array_equal(plan.batch(4), plan.epoch(1)[1])


def test_pk_modality_balance():
  labels = np.repeat(np.arange(4), 6)
  modalities = ["rgb", "rgb", "rgb", "ir", "ir", "ir"] * 4
  plan = PKBatchPlan(labels, 2, 4, seed=0, modalities=modalities, balance=("rgb", "ir"))
  for batch in plan.epoch(0):
    for pid in np.unique(labels[batch]):
      mods = [modalities[i] for i in batch[labels[batch] == pid]]
      assert mods.count("rgb") == 2 and mods.count("ir") == 2


def test_pk_rejects_too_many_ids():
  with pytest.raises(ValueError, match="P=5"):
    PKBatchPlan(np.arange(3), 5, 2, seed=0)


def _spec(**kwargs):
  return pipeline.TrainBatchSpec(image_size=(16, 8), num_ids=3, num_instances=2, seed=3, **kwargs)


def test_train_batches_shapes_and_labels(tiny_records):
  it = iter(pipeline.train_dataset(tiny_records, _spec()))
  batch = next(it)
  assert batch["image"].shape == (6, 16, 8, 3) and batch["image"].dtype == np.uint8
  labels = batch["label"]
  assert len(np.unique(labels)) == 3 and labels.min() >= 0 and labels.max() < 7
  original = {tiny_records[i].pid - 100 for i in batch["index"]}
  assert original == set(labels.tolist())  # dense labels keep the sorted id order


def test_resume_from_iterator_state_gives_same_batches(tiny_records):
  it = iter(pipeline.train_dataset(tiny_records, _spec()))
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(4)]
  resumed = iter(pipeline.train_dataset(tiny_records, _spec()))
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_worker_processes_give_the_same_batches(tiny_records):
  plain = iter(pipeline.train_dataset(tiny_records, _spec()))
  parallel = iter(pipeline.train_dataset(tiny_records, _spec(), num_workers=2))
  try:
    for _ in range(3):
      np.testing.assert_array_equal(next(plain)["image"], next(parallel)["image"])
  finally:
    parallel.close()


def test_process_slices_partition_the_global_batch(tiny_records):
  full = next(iter(pipeline.train_dataset(tiny_records, _spec())))
  halves = [next(iter(pipeline.train_dataset(tiny_records, _spec(process_index=i, process_count=2))))
            for i in range(2)]
  np.testing.assert_array_equal(np.concatenate([h["index"] for h in halves]), full["index"])


def test_eval_batches_pad_last_batch(tiny_records):
  batches = list(pipeline.eval_batches(tiny_records[:5], (16, 8), batch_size=2))
  assert [n for _, n in batches] == [2, 2, 1]
  assert np.all(batches[-1][0][1] == 0)
