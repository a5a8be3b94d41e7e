"""Multi-task training streams: several tasks' P x K batches mixed by ratio.

'per_batch': every batch is one task's P x K batch, the task drawn with
probability proportional to its ratio from (seed, batch index). 'mixed':
every batch holds P identities split over all tasks in proportion to their
ratios (largest remainders), each task's identities with K images. Either
way batch i is a pure function of (tasks, mode, seed, i), so a resumed or
re-sharded stream yields the same batches.

Labels: a task's dense labels are offset by the identities of the tasks
before it (`label_offsets`), so one classifier covers every task. Batches
carry the pipeline's fields (see pipeline.train_dataset) and 'task', the
task's position in the list, int32 [B]; with companions (every task has its
own, giving the same keys and shapes) their fields too.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import grain
import numpy as np

from data_pipelines import pipeline
from data_pipelines.records import Record
from data_pipelines.sources import Source, as_source

MIX_MODES = ("per_batch", "mixed")
# What every task's spec must agree on: the shape of a batch and its slicing over processes.
_SHARED_FIELDS = ("image_size", "num_ids", "num_instances", "process_index", "process_count")
_MIX_STREAM = 0x6D6978  # Keeps task draws apart from the sampling and augmentation streams.


@dataclasses.dataclass(frozen=True)
class MixTask:
  """One task of a mixed stream: its training data, its mixing ratio and its batch spec.

  spec: image_size, num_ids, num_instances and the process fields must be the
  same for every task; seed, augment, balance_modalities and on_bad_image
  may differ.
  companions: per-row arrays for this task's records (pipeline.Companions);
  every task has companions or none does.
  """

  name: str
  data: Sequence[Record] | Source
  ratio: float
  spec: pipeline.TrainBatchSpec
  companions: pipeline.Companions | None = None


def label_offsets(tasks: Sequence[MixTask]) -> np.ndarray:
  """[0, n_0, n_0 + n_1, ...]: task t's labels start at entry t; the last entry is the number of classes."""
  counts = [len({r.pid for r in as_source(task.data).records}) for task in tasks]
  return np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)


def ids_per_task(ratios: Sequence[float], num_ids: int) -> np.ndarray:
  """num_ids split in proportion to `ratios` by largest remainders."""
  share = num_ids * np.asarray(ratios, np.float64) / np.sum(ratios)
  counts = np.floor(share).astype(np.int64)
  order = np.argsort(counts - share, kind="stable")
  counts[order[:num_ids - counts.sum()]] += 1
  return counts


def _check(tasks: Sequence[MixTask], mode: str) -> None:
  if mode not in MIX_MODES:
    raise ValueError(f"mode must be one of {MIX_MODES}, got {mode!r}")
  if not tasks:
    raise ValueError("no tasks to mix")
  names = [task.name for task in tasks]
  if len(set(names)) < len(names):
    raise ValueError(f"task names repeat: {names}")
  with_companions = [task.name for task in tasks if task.companions is not None]
  if with_companions and len(with_companions) < len(tasks):
    raise ValueError(f"tasks {with_companions} have companions but not every task does; batches of all tasks "
                     "must have the same fields")
  for task in tasks:
    if not task.ratio > 0:
      raise ValueError(f"task {task.name!r}: ratio must be positive, got {task.ratio}")
    for field in _SHARED_FIELDS:
      mine, first = getattr(task.spec, field), getattr(tasks[0].spec, field)
      if mine != first:
        raise ValueError(f"task {task.name!r} has {field}={mine} but task {tasks[0].name!r} has {first}; "
                         "every task's batches must have the same shape")


class _LoadMixedBatch:
  """Global batch index -> this host's slice of the mixed batch."""

  def __init__(self, tasks: Sequence[MixTask], mode: str, seed: int):
    offsets = label_offsets(tasks)
    self.rows = [pipeline.TaskRows(task.data, task.spec, int(offsets[t]), task.companions)
                 for t, task in enumerate(tasks)]
    self.spec, self.mode, self.seed = tasks[0].spec, mode, seed
    ratios = np.array([task.ratio for task in tasks], np.float64)
    self.probabilities = ratios / ratios.sum()
    counts = [self.spec.num_ids] * len(tasks)
    if mode == "mixed":
      counts = ids_per_task(ratios, self.spec.num_ids)
      for task, count in zip(tasks, counts):
        if not count:
          raise ValueError(f"task {task.name!r}: ratio {task.ratio} gives it no identity of the "
                           f"{self.spec.num_ids} in a mixed batch")
    self.plans = [rows.plan(int(count)) for rows, count in zip(self.rows, counts)]

  def task_of_batch(self, index: int) -> int:
    """The task of batch `index` in 'per_batch' mode."""
    rng = np.random.default_rng([self.seed, index, _MIX_STREAM])
    return int(rng.choice(len(self.probabilities), p=self.probabilities))

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    tasks = [self.task_of_batch(index)] if self.mode == "per_batch" else range(len(self.plans))
    mine = pipeline.host_rows(self.spec.num_ids * self.spec.num_instances, self.spec)
    parts, start = [], 0
    for t in tasks:
      indices = self.plans[t].batch(index)
      lo, hi = max(start, mine.start), min(start + len(indices), mine.stop)
      if lo < hi:
        part = self.rows[t].load(indices[lo - start:hi - start], index, range(lo, hi))
        parts.append({**part, "task": np.full(hi - lo, t, np.int32)})
      start += len(indices)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def mixed_dataset(tasks: Sequence[MixTask], mode: str = "per_batch", seed: int = 0, num_workers: int = 0,
                  num_threads: int = 2, buffer_size: int = 4) -> grain.IterDataset:
  """An endless, checkpointable stream of batches mixing `tasks` by ratio (see the module doc).

  `seed` drives the task draws ('per_batch'); each task's spec.seed drives its
  sampling and augmentation. Workers and buffers as in pipeline.batch_stream.
  """
  _check(tasks, mode)
  return pipeline.batch_stream(_LoadMixedBatch(tasks, mode, seed), num_workers, num_threads, buffer_size)
