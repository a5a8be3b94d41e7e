"""grain input pipelines: P x K training batches and padded evaluation batches."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import weakref
from typing import Callable, Iterator, Sequence

import grain
import numpy as np
from absl import logging

from data_pipelines import images as image_ops
from data_pipelines.records import MODALITIES, Record
from data_pipelines.sampling import PKBatchPlan
from data_pipelines.sources import Source, as_source

BAD_IMAGE_POLICIES = ("skip", "fail")
_COMPANION_STREAM = 0x636F6D70  # Keeps companion draws apart from the augmentation stream.
_SEEN_UNREADABLE = "unreadable_seen"  # CountUnreadable's key in a checkpoint's data state

# companions(record_index, record, rng) -> {key: fixed-shape array}: what a method adds to a row besides its
# image (a sketch, token ids, ...). Picklable (worker processes run it); its draws come from `rng` only.
Companions = Callable[[int, Record, np.random.Generator], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Training augmentations; probabilities are per image.

  channel_exchange: probability that a visible ('rgb') image becomes one of
  its channels repeated three times (CAJ, for visible-infrared training).
  """

  padding: int = 10
  flip: bool = True
  erasing: float = 0.5
  color_jitter: float = 0.0
  grayscale: float = 0.0
  channel_exchange: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainBatchSpec:
  """What one training batch is: P identities x K images at image_size.

  on_bad_image: 'skip' replaces an image that cannot be decoded by another
  image of the same identity (the batch's 'replaced' and 'unreadable' fields
  mark the row and the file is logged); 'fail' raises ImageError naming the file.
  """

  image_size: tuple[int, int]
  num_ids: int
  num_instances: int
  seed: int = 0
  augment: AugmentConfig = AugmentConfig()
  balance_modalities: tuple[str, ...] = ()
  process_index: int = 0
  process_count: int = 1
  on_bad_image: str = "skip"

  def __post_init__(self):
    if self.on_bad_image not in BAD_IMAGE_POLICIES:
      raise ValueError(f"on_bad_image must be one of {BAD_IMAGE_POLICIES}, got {self.on_bad_image!r}")
    if self.num_ids * self.num_instances % self.process_count:
      raise ValueError(f"batch of {self.num_ids} x {self.num_instances} does not split over "
                       f"{self.process_count} processes")


def dense_labels(records: Sequence[Record]) -> tuple[np.ndarray, dict[int, int]]:
  """Maps the records' identities to 0..N-1 (sorted by original id)."""
  mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
  return np.array([mapping[r.pid] for r in records], np.int32), mapping


def host_rows(batch_size: int, spec: TrainBatchSpec) -> slice:
  """The rows of a global batch that this process (spec.process_index) loads."""
  per_host = batch_size // spec.process_count
  return slice(spec.process_index * per_host, (spec.process_index + 1) * per_host)


class TaskRows:
  """Decodes and augments rows of one source: the per-row work of every training batch.

  Row r of global batch b is augmented with a generator seeded by
  (spec.seed, b, r), so a row does not depend on how a batch is split over
  processes. `companions` (optional) adds per-row arrays, stacked under their
  keys, from a generator of its own seeded by the same row key.
  """

  def __init__(self, data: Sequence[Record] | Source, spec: TrainBatchSpec, label_offset: int = 0,
               companions: Companions | None = None):
    self.source, self.spec, self.companions = as_source(data), spec, companions
    self.records = self.source.records
    if not self.records:
      raise ValueError("no training records: the training split is empty")
    self.labels = dense_labels(self.records)[0] + label_offset
    self._by_label = {label: np.flatnonzero(self.labels == label) for label in np.unique(self.labels)}
    self._bad = set()  # Indices found undecodable in this process.
    # One empty file per undecodable record, made by whichever of grain's threads and worker processes (which
    # get a pickled copy of this loader) meets it first: it alone warns. Removed with the main process's loader.
    self._warned = tempfile.mkdtemp(prefix="jreid-unreadable-")
    weakref.finalize(self, shutil.rmtree, self._warned, ignore_errors=True)

  def plan(self, num_ids: int) -> PKBatchPlan:
    """The P x K sampling plan over this source with `num_ids` identities per batch."""
    return PKBatchPlan(self.labels, num_ids, self.spec.num_instances, self.spec.seed,
                       modalities=[r.modality for r in self.records], balance=self.spec.balance_modalities)

  def load(self, indices: np.ndarray, batch: int, rows: range) -> dict[str, np.ndarray]:
    """Rows `rows` of global batch `batch`, which hold records `indices`."""
    images = np.empty((len(indices), *self.spec.image_size, 3), np.uint8)
    used = np.empty(len(indices), np.int64)
    for i, (index, row) in enumerate(zip(indices, rows)):
      image, used[i] = self._decode(int(index), (self.spec.seed, batch, row))
      images[i] = self._augment(image, self.records[used[i]].modality,
                                np.random.default_rng([self.spec.seed, batch, row]))
    records = [self.records[i] for i in used]
    return {
        "image": images,
        "label": self.labels[used],
        "camid": np.array([r.camid for r in records], np.int32),
        "modality": np.array([MODALITIES.index(r.modality) for r in records], np.int32),
        "clothes": np.array([r.clothes_id for r in records], np.int32),
        "index": used.astype(np.int32),
        "replaced": (used != indices).astype(np.int32),
        "unreadable": np.where(used != indices, indices, -1).astype(np.int32),
        **self._companions(used, batch, rows),
    }

  def _companions(self, used: np.ndarray, batch: int, rows: range) -> dict[str, np.ndarray]:
    """The companions' arrays of the rows, stacked per key ({} without companions)."""
    if self.companions is None:
      return {}
    parts = [self.companions(int(index), self.records[index],
                             np.random.default_rng([self.spec.seed, batch, row, _COMPANION_STREAM]))
             for index, row in zip(used, rows)]
    return {key: np.stack([part[key] for part in parts]) for key in parts[0]}

  def _decode(self, index: int, key: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """The image of record `index` or, under 'skip', of another record of its identity.

    Under 'skip' an undecodable file is logged once by this loader and its copies in worker processes:
    the threads and processes that load batches at the same time may each fail on it, but only the first
    to mark it warns.
    """
    for candidate in self._candidates(index, key):
      if candidate in self._bad:
        continue
      try:
        return self.source.image(candidate, self.spec.image_size), candidate
      except image_ops.ImageError as error:
        if self.spec.on_bad_image == "fail":
          raise
        self._bad.add(candidate)
        if self._first_to_mark(candidate):
          logging.warning("%s; using another image of identity %d (on_bad_image='skip')",
                          error, self.records[candidate].pid)
    raise image_ops.ImageError(f"no image of identity {self.records[index].pid} can be read "
                               f"(first: {self.records[index].path!r})")

  def _first_to_mark(self, index: int) -> bool:
    """Whether this call is the first, of every thread and process loading for this loader, to mark record
    `index` undecodable (an exclusive create is atomic across both)."""
    try:
      os.close(os.open(os.path.join(self._warned, str(index)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
      return False
    return True

  def _candidates(self, index: int, key: tuple[int, int, int]) -> Iterator[int]:
    """`index`, then (under 'skip') the identity's other records in an order drawn from `key`.

    Records of the same modality come first.
    """
    yield index
    if self.spec.on_bad_image == "fail":
      return
    rng = np.random.default_rng([*key, 1])
    others = [int(i) for i in rng.permutation(self._by_label[self.labels[index]]) if i != index]
    modality = self.records[index].modality
    yield from sorted(others, key=lambda i: self.records[i].modality != modality)

  def _augment(self, image: np.ndarray, modality: str, rng: np.random.Generator) -> np.ndarray:
    aug = self.spec.augment
    if aug.flip:
      image = image_ops.random_flip(image, rng)
    image = image_ops.random_crop_with_padding(image, aug.padding, rng)
    if aug.color_jitter:
      image = image_ops.color_jitter(image, rng, aug.color_jitter)
    if aug.channel_exchange and modality == "rgb":
      image = image_ops.channel_exchange(image, rng, aug.channel_exchange)
    if aug.grayscale:
      image = image_ops.random_grayscale(image, rng, aug.grayscale)
    if aug.erasing:
      image = image_ops.random_erasing(image, rng, aug.erasing)
    return image


class _LoadTrainBatch:
  """Global batch index -> this host's slice of the P x K batch, decoded and augmented."""

  def __init__(self, rows: TaskRows):
    self.rows, self.plan = rows, rows.plan(rows.spec.num_ids)

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    mine = host_rows(self.plan.batch_size, self.rows.spec)
    indices = self.plan.batch(int(index))[mine]
    return self.rows.load(indices, int(index), range(mine.start, mine.stop))


class CountUnreadable:
  """A stream of batches that adds the (task, record) pairs of their 'unreadable' rows to `seen`.

  Its state carries `seen` beside the stream's, so a resumed run's count includes the images met before.
  """

  def __init__(self, batches, seen: set[tuple[int, int]]):
    self.batches, self.seen = batches, seen

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self.batches)
    if "unreadable" in batch:
      rows = batch["unreadable"] >= 0
      tasks = batch["task"][rows] if "task" in batch else np.zeros(rows.sum(), np.int32)
      self.seen.update(zip(tasks.tolist(), batch["unreadable"][rows].tolist()))
    return batch

  def get_state(self) -> dict:
    return {**self.batches.get_state(), _SEEN_UNREADABLE: sorted(map(list, self.seen))}

  def set_state(self, state: dict) -> None:
    state = dict(state)
    self.seen.update(map(tuple, state.pop(_SEEN_UNREADABLE, [])))  # absent from checkpoints saved before it
    self.batches.set_state(state)

  def close(self) -> None:
    self.batches.close()


def batch_stream(load_batch: Callable[[int], dict[str, np.ndarray]], num_workers: int = 0,
                 num_threads: int = 2, buffer_size: int = 4) -> grain.IterDataset:
  """An endless, checkpointable stream of load_batch(0), load_batch(1), ...

  num_workers > 0 decodes in that many processes; each process loads up to
  `num_threads` batches at a time and keeps up to `buffer_size` ready.
  """
  dataset = grain.MapDataset.range(np.iinfo(np.int64).max).map(load_batch)
  dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=buffer_size))
  if num_workers > 0:
    dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return dataset


def train_dataset(data: Sequence[Record] | Source, spec: TrainBatchSpec, num_workers: int = 0,
                  num_threads: int = 2, buffer_size: int = 4,
                  companions: Companions | None = None) -> grain.IterDataset:
  """An endless, checkpointable stream of training batches (dicts of numpy arrays).

  `data`: records (images read from their paths) or a Source (e.g.
  sources.tfds_source). Keys: image uint8 [B, H, W, 3]; label (dense, 0..N-1),
  camid, modality (index in MODALITIES), clothes, index (the record), replaced
  (1 where a bad image was replaced), unreadable (the record whose image was
  replaced, -1 elsewhere), all int32 [B]; plus, with `companions`,
  its keys (e.g. sketch uint8 [B, H, W, 3], text int32 [B, L]) for the record
  each row holds. Batch i is a pure function of (data, spec, companions, i):
  resuming from the iterator state, or changing the worker count, yields the
  same batches.
  """
  return batch_stream(_LoadTrainBatch(TaskRows(data, spec, companions=companions)), num_workers, num_threads,
                      buffer_size)


def eval_batches(data: Sequence[Record] | Source, image_size: tuple[int, int], batch_size: int,
                 num_threads: int = 4) -> Iterator[tuple[np.ndarray, int]]:
  """Yields (images uint8 [batch_size, H, W, 3], number of real rows) with the last batch zero-padded.

  Raises:
    ImageError: naming the file of an image that cannot be decoded.
  """
  source = as_source(data)
  chunks = [range(i, min(i + batch_size, len(source.records))) for i in range(0, len(source.records), batch_size)]

  def load(chunk):
    batch = np.zeros((batch_size, *image_size, 3), np.uint8)
    for row, index in enumerate(chunk):
      batch[row] = source.image(index, image_size)
    return batch, len(chunk)

  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    pending = [pool.submit(load, chunk) for chunk in chunks[:2 * num_threads]]
    for next_chunk in chunks[2 * num_threads:] + [None] * len(pending):
      yield pending.pop(0).result()
      if next_chunk is not None:
        pending.append(pool.submit(load, next_chunk))
