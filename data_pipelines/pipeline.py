"""grain input pipelines: P x K training batches and padded evaluation batches."""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Iterator, Sequence

import grain
import numpy as np

from data_pipelines import images as image_ops
from data_pipelines.records import MODALITIES, Record
from data_pipelines.sampling import PKBatchPlan


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  padding: int = 10
  flip: bool = True
  erasing: float = 0.5
  color_jitter: float = 0.0
  grayscale: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainBatchSpec:
  """What one training batch is: P identities x K images at image_size."""

  image_size: tuple[int, int]
  num_ids: int
  num_instances: int
  seed: int = 0
  augment: AugmentConfig = AugmentConfig()
  balance_modalities: tuple[str, ...] = ()
  process_index: int = 0
  process_count: int = 1


def dense_labels(records: Sequence[Record]) -> tuple[np.ndarray, dict[int, int]]:
  """Maps the records' identities to 0..N-1 (sorted by original id)."""
  mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
  return np.array([mapping[r.pid] for r in records], np.int32), mapping


class _LoadTrainBatch:
  """Global batch index -> this host's slice of the batch, decoded and augmented."""

  def __init__(self, records: Sequence[Record], labels: np.ndarray, plan: PKBatchPlan, spec: TrainBatchSpec):
    self.records, self.labels, self.plan, self.spec = records, labels, plan, spec
    if plan.batch_size % spec.process_count:
      raise ValueError(f"batch of {plan.batch_size} does not split over {spec.process_count} processes")

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    indices = self.plan.batch(int(index))
    per_host = len(indices) // self.spec.process_count
    indices = indices[self.spec.process_index * per_host:(self.spec.process_index + 1) * per_host]
    rng = np.random.default_rng([self.spec.seed, int(index), self.spec.process_index])
    images = np.stack([self._augment(image_ops.load_image(self.records[i].path, self.spec.image_size), rng)
                       for i in indices])
    records = [self.records[i] for i in indices]
    return {
        "image": images,
        "label": self.labels[indices],
        "camid": np.array([r.camid for r in records], np.int32),
        "modality": np.array([MODALITIES.index(r.modality) for r in records], np.int32),
        "clothes": np.array([r.clothes_id for r in records], np.int32),
        "index": indices.astype(np.int32),
    }

  def _augment(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    aug = self.spec.augment
    if aug.flip:
      image = image_ops.random_flip(image, rng)
    image = image_ops.random_crop_with_padding(image, aug.padding, rng)
    if aug.color_jitter:
      image = image_ops.color_jitter(image, rng, aug.color_jitter)
    if aug.grayscale:
      image = image_ops.random_grayscale(image, rng, aug.grayscale)
    if aug.erasing:
      image = image_ops.random_erasing(image, rng, aug.erasing)
    return np.ascontiguousarray(image)


def train_dataset(records: Sequence[Record], spec: TrainBatchSpec, num_workers: int = 0) -> grain.IterDataset:
  """An endless, checkpointable stream of training batches (dicts of numpy arrays).

  Batch i is a pure function of (records, spec, i): resuming from the iterator
  state, or changing the worker count, yields the same batches.
  """
  labels, _ = dense_labels(records)
  plan = PKBatchPlan(labels, spec.num_ids, spec.num_instances, spec.seed,
                     modalities=[r.modality for r in records], balance=spec.balance_modalities)
  dataset = grain.MapDataset.range(np.iinfo(np.int64).max).map(_LoadTrainBatch(records, labels, plan, spec))
  dataset = dataset.to_iter_dataset()
  if num_workers > 0:
    dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return dataset


def eval_batches(records: Sequence[Record], image_size: tuple[int, int], batch_size: int,
                 num_threads: int = 4) -> Iterator[tuple[np.ndarray, int]]:
  """Yields (images uint8 [batch_size, H, W, 3], number of real rows) with the last batch zero-padded."""
  paths = [r.path for r in records]
  chunks = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]

  def load(chunk):
    batch = np.zeros((batch_size, *image_size, 3), np.uint8)
    for row, path in enumerate(chunk):
      batch[row] = image_ops.load_image(path, image_size)
    return batch, len(chunk)

  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    pending = [pool.submit(load, chunk) for chunk in chunks[:2 * num_threads]]
    for next_chunk in chunks[2 * num_threads:] + [None] * len(pending):
      yield pending.pop(0).result()
      if next_chunk is not None:
        pending.append(pool.submit(load, next_chunk))
