"""P x K identity sampling: every batch holds P identities with K images each."""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np


class PKBatchPlan:
  """A deterministic, epoch-structured plan of P x K batches.

  Each epoch shuffles the identities and walks through them P at a time, so an
  epoch covers every identity; the last batch is topped up with identities
  from the rest of the epoch's order. Each identity contributes K images, drawn
  without replacement when it has enough. With `balance`, the K images are
  split evenly over those modalities (e.g. ('rgb', 'ir')) where the identity
  has them. Batch b of the run is a pure function of (seed, b).
  """

  def __init__(self, labels: Sequence[int], num_ids: int, num_instances: int, seed: int,
               modalities: Sequence[str] | None = None, balance: Sequence[str] = ()):
    labels = np.asarray(labels)
    self.ids = np.unique(labels)
    if num_ids > len(self.ids):
      raise ValueError(f"P={num_ids} identities per batch but the training set has only {len(self.ids)}")
    if balance and num_instances % len(balance):
      raise ValueError(f"K={num_instances} is not divisible by the {len(balance)} balanced modalities {balance}")
    self.num_ids, self.num_instances, self.seed = num_ids, num_instances, seed
    self.balance = tuple(balance)
    self.members = collections.defaultdict(list)
    for index, label in enumerate(labels):
      key = (label, modalities[index]) if balance and modalities[index] in balance else (label, None)
      self.members[key].append(index)
    self.members = {key: np.asarray(v) for key, v in self.members.items()}
    self.batches_per_epoch = -(-len(self.ids) // num_ids)
    self._epochs = {}  # Cache: the last epoch asked for and its neighbours.

  @property
  def batch_size(self) -> int:
    return self.num_ids * self.num_instances

  def epoch(self, epoch: int) -> np.ndarray:
    """All batches of one epoch as record indices [batches_per_epoch, P * K]."""
    if epoch not in self._epochs:
      recent = {e: batches for e, batches in self._epochs.items() if abs(e - epoch) == 1}
      self._epochs = {**recent, epoch: self._make_epoch(epoch)}
    return self._epochs[epoch]

  def _make_epoch(self, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, epoch])
    order = rng.permutation(self.ids)
    batches = []
    for start in range(0, len(order), self.num_ids):
      chosen = list(order[start:start + self.num_ids])
      if len(chosen) < self.num_ids:
        rest = [i for i in order[:start] if i not in chosen]
        chosen += list(rng.choice(rest, self.num_ids - len(chosen), replace=False))
      batches.append(np.concatenate([self._instances(pid, rng) for pid in chosen]))
    return np.stack(batches)

  def batch(self, index: int) -> np.ndarray:
    epoch, position = divmod(index, self.batches_per_epoch)
    return self.epoch(epoch)[position]

  def _instances(self, pid: int, rng: np.random.Generator) -> np.ndarray:
    if not self.balance:
      return _draw(self.members[(pid, None)], self.num_instances, rng)
    per_modality = self.num_instances // len(self.balance)
    pools = [self.members.get((pid, m)) for m in self.balance]
    fallback = np.concatenate([p for p in pools if p is not None] + [self.members.get((pid, None), np.zeros(0, int))])
    return np.concatenate([_draw(p if p is not None else fallback, per_modality, rng) for p in pools])


def _draw(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
  return rng.choice(pool, count, replace=len(pool) < count)
