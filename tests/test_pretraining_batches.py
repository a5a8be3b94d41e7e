"""Pretraining batches: multi-crop views and caption tokens per row, epochs in order, hosts, resume, bad images."""

import dataclasses
import pathlib

import numpy as np
from PIL import Image

from data_pipelines import corpus, multicrop, pretraining

CROPS = multicrop.MultiCropConfig(global_size=(16, 8), local_size=(8, 4), num_local=3)


def _tokens(text: str) -> np.ndarray:
  """Picklable stand-in for a tokenizer: the first 6 character codes, zero-padded."""
  return np.array([ord(c) for c in text[:6]] + [0] * (6 - len(text[:6])), np.int32)


def _images(tmp_path, count=6):
  for i in range(count):
    Image.fromarray(np.full((32, 16, 3), 10 * i, np.uint8)).save(tmp_path / f"{i}.png")
  images = corpus.folder_corpus(str(tmp_path))
  return tuple(dataclasses.replace(image, captions=(f"cap{i}a", f"cap{i}b") if i % 2 else ())
               for i, image in enumerate(images))


def _number(image) -> int:
  return int(pathlib.Path(image.path).stem)


def test_rows_hold_views_and_caption_tokens_without_labels(tmp_path):
  images = _images(tmp_path)
  stream = pretraining.pretrain_batches(images, pretraining.PretrainBatchSpec(4, CROPS, seed=0), _tokens)
  batch = next(iter(stream))
  assert sorted(batch) == ["global", "has_text", "index", "local", "photo", "replaced", "text"]
  assert batch["global"].shape == (4, 2, 16, 8, 3) and batch["local"].shape == (4, 3, 8, 4, 3)
  assert batch["global"].dtype == batch["local"].dtype == np.uint8 and batch["text"].shape == (4, 6)
  for row, index in enumerate(batch["index"]):
    captions = images[index].captions
    assert batch["has_text"][row] == bool(captions)
    assert batch["photo"][row].shape == (16, 8, 3) and np.all(batch["photo"][row] == 10 * _number(images[index]))  # colours kept
    assert any(np.array_equal(batch["text"][row], _tokens(c)) for c in captions or ("",))
  no_text = next(iter(pretraining.pretrain_batches(images, pretraining.PretrainBatchSpec(4, CROPS))))
  assert sorted(no_text) == ["global", "index", "local", "replaced"]


def test_every_epoch_reads_each_image_once_in_a_new_order(tmp_path):
  images = _images(tmp_path)
  iterator = iter(pretraining.pretrain_batches(images, pretraining.PretrainBatchSpec(2, CROPS, seed=1)))
  order = np.concatenate([next(iterator)["index"] for _ in range(9)])  # Three epochs of six.
  epochs = order.reshape(3, 6)
  assert all(sorted(epoch) == list(range(6)) for epoch in epochs)
  assert len({tuple(epoch) for epoch in epochs}) > 1


def test_processes_split_the_global_batch(tmp_path):
  images = _images(tmp_path)
  whole = next(iter(pretraining.pretrain_batches(images, pretraining.PretrainBatchSpec(4, CROPS), _tokens)))
  halves = [next(iter(pretraining.pretrain_batches(
      images, pretraining.PretrainBatchSpec(4, CROPS, process_index=p, process_count=2), _tokens))) for p in (0, 1)]
  for key, value in whole.items():
    np.testing.assert_array_equal(value, np.concatenate([h[key] for h in halves]))


def test_resume_from_the_iterator_state_continues_identically(tmp_path):
  images = _images(tmp_path)
  spec = pretraining.PretrainBatchSpec(4, CROPS, seed=2)
  iterator = iter(pretraining.pretrain_batches(images, spec, _tokens))
  next(iterator), next(iterator)
  state = iterator.get_state()
  expected = [next(iterator) for _ in range(2)]
  resumed = iter(pretraining.pretrain_batches(images, spec, _tokens))
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_an_undecodable_image_is_replaced_by_the_next_in_order(tmp_path):
  images = _images(tmp_path, count=4)
  (tmp_path / "2.png").write_bytes(b"not a png")
  bad = [i for i, image in enumerate(images) if image.path.endswith("2.png")][0]
  batch = next(iter(pretraining.pretrain_batches(images, pretraining.PretrainBatchSpec(4, CROPS, seed=3))))
  assert bad not in batch["index"] and batch["replaced"].sum() == 1
