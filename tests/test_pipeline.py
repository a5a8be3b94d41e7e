"""P x K sampling, augmentations and the grain training pipeline (determinism, resume, bad images)."""

import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from data_pipelines import images
from data_pipelines import pipeline
from data_pipelines.records import MODALITIES, Record
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


def test_process_slices_have_the_rows_of_the_full_batch(tiny_records):
  full = next(iter(pipeline.train_dataset(tiny_records, _spec())))
  halves = [next(iter(pipeline.train_dataset(tiny_records, _spec(process_index=i, process_count=2))))
            for i in range(2)]
  for key in full:
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), full[key])


def test_eval_batches_pad_last_batch(tiny_records):
  batches = list(pipeline.eval_batches(tiny_records[:5], (16, 8), batch_size=2))
  assert [n for _, n in batches] == [2, 2, 1]
  assert np.all(batches[-1][0][1] == 0)


def test_augmentations_match_their_definitions():
  image = np.random.default_rng(0).integers(0, 256, (16, 8, 3), dtype=np.uint8)
  for seed in range(10):
    rng, ref = np.random.default_rng(seed), np.random.default_rng(seed)
    cropped = images.random_crop_with_padding(image, 3, rng)
    top, left = ref.integers(0, 7, size=2)
    np.testing.assert_array_equal(cropped, np.pad(image, ((3, 3), (3, 3), (0, 0)))[top:top + 16, left:left + 8])
    flipped = images.random_flip(image, rng)
    assert flipped is image or np.array_equal(flipped, image[:, ::-1])
  np.testing.assert_array_equal(images.color_jitter(image, np.random.default_rng(0), 0.0), image)
  flat = images.color_jitter(np.full((4, 4, 3), 200, np.uint8), np.random.default_rng(0), 0.5)
  assert np.ptp(flat) == 0  # A flat grey image stays flat grey.


def test_channel_exchange_repeats_one_original_channel():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)
  seen = set()
  for seed in range(20):
    out = images.channel_exchange(image, np.random.default_rng(seed), 1.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    channel = [c for c in range(3) if np.array_equal(out, np.repeat(image[..., c:c + 1], 3, axis=2))]
    assert len(channel) == 1
    seen.add(channel[0])
  assert seen == {0, 1, 2}
  assert images.channel_exchange(image, rng, 0.0) is image


def test_channel_exchange_touches_visible_images_only(tiny_records):
  augment = pipeline.AugmentConfig(padding=0, flip=False, erasing=0.0, channel_exchange=1.0)
  batch = next(iter(pipeline.train_dataset(tiny_records, _spec(augment=augment))))
  single = np.all(batch["image"] == batch["image"][..., :1], axis=(1, 2, 3))
  rgb = batch["modality"] == MODALITIES.index("rgb")
  assert rgb.any() and (~rgb).any()
  np.testing.assert_array_equal(single, rgb)


@pytest.fixture
def records_with_truncated_png(tmp_path):
  """3 identities x 3 PNGs; the first image of identity 0 is cut in half."""
  rng = np.random.default_rng(1)
  out = []
  for pid in range(3):
    for j in range(3):
      path = tmp_path / f"{pid}_{j}.png"
      Image.fromarray(rng.integers(0, 256, (24, 12, 3), dtype=np.uint8)).save(path)
      out.append(Record(str(path), pid=pid, camid=j))
  content = pathlib.Path(out[0].path).read_bytes()
  pathlib.Path(out[0].path).write_bytes(content[:len(content) // 2])
  return out


def _bad_spec(policy):
  return pipeline.TrainBatchSpec(image_size=(16, 8), num_ids=3, num_instances=3, on_bad_image=policy)


def test_bad_image_is_replaced_by_the_same_identity_and_counted(records_with_truncated_png, caplog):
  records = records_with_truncated_png
  it = iter(pipeline.train_dataset(records, _bad_spec("skip")))
  replaced = 0
  for _ in range(4):  # Every batch holds all 9 images (3 ids x 3), the bad one included.
    batch = next(it)
    assert 0 not in batch["index"]
    rows = batch["replaced"] == 1
    assert rows.sum() == 1 and batch["label"][rows] == 0
    replaced += rows.sum()
  assert replaced == 4
  assert records[0].path in caplog.text


def test_bad_image_fails_naming_the_file(records_with_truncated_png):
  it = iter(pipeline.train_dataset(records_with_truncated_png, _bad_spec("fail")))
  with pytest.raises(images.ImageError, match=re.escape(records_with_truncated_png[0].path)):
    next(it)


def test_bad_image_in_worker_processes(records_with_truncated_png):
  plain = iter(pipeline.train_dataset(records_with_truncated_png, _bad_spec("skip")))
  parallel = iter(pipeline.train_dataset(records_with_truncated_png, _bad_spec("skip"), num_workers=1))
  failing = iter(pipeline.train_dataset(records_with_truncated_png, _bad_spec("fail"), num_workers=1))
  try:
    for _ in range(2):
      want, got = next(plain), next(parallel)
      for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    with pytest.raises(images.ImageError, match=re.escape(records_with_truncated_png[0].path)):
      next(failing)
  finally:
    parallel.close()
    failing.close()


def test_unknown_bad_image_policy():
  with pytest.raises(ValueError, match="on_bad_image"):
    _bad_spec("ignore")


def test_eval_batches_name_a_bad_file(records_with_truncated_png):
  with pytest.raises(images.ImageError, match=re.escape(records_with_truncated_png[0].path)):
    list(pipeline.eval_batches(records_with_truncated_png, (16, 8), batch_size=4))


def test_missing_image_names_its_path(tmp_path):
  with pytest.raises(images.ImageError, match="absent.png"):
    images.decode_image(str(tmp_path / "absent.png"), (16, 8))


def test_empty_training_split():
  with pytest.raises(ValueError, match="empty"):
    pipeline.train_dataset([], _spec())
