"""The record types every dataset reader produces and every pipeline consumes."""

from __future__ import annotations

import dataclasses
from typing import Sequence

# Modalities a record's image may have.
MODALITIES = ("rgb", "ir", "sketch", "template")
# What a query of an evaluation task is made of.
QUERY_KINDS = ("image", "text", "sketch", "text+sketch", "image+instruction", "image+template")


@dataclasses.dataclass(frozen=True)
class Record:
  """One image (or one text-only item) with the labels the protocols need.

  path: image file ('' for a text-only query).
  pid: identity (-1 unknown / distractor). camid: camera index.
  clothes_id: outfit label, unique per (pid, outfit); -1 when unknown.
  modality: one of MODALITIES. scale: 1 for full resolution, s > 1 when the
  image was down-sampled by s (cross-resolution tasks).
  scenario: the unsupervised scenario the record belongs to ('' if none).
  captions: descriptions of the image (text queries, language instructions).
  instruction: the instruction paired with this item, if the task fixes one.
  template: path of a clothes-template image (clothes-template instructions).
  source: for derived items (sketches, low resolution) the photo they came from.
  target_clothes_id: the clothes a query asks for (clothes-template and
  language-instructed queries: gallery items of the query's pid wearing them
  match); -1 when it asks for none.
  orig_pid: the identity as the dataset names it (train pids are relabelled
  to 0..N-1; -1 where the dataset names none).
  """

  path: str
  pid: int
  camid: int
  clothes_id: int = -1
  modality: str = "rgb"
  scale: int = 1
  scenario: str = ""
  captions: tuple[str, ...] = ()
  instruction: str = ""
  template: str = ""
  source: str = ""
  target_clothes_id: int = -1
  orig_pid: int = -1


@dataclasses.dataclass(frozen=True)
class EvalTask:
  """A query/gallery split evaluated under one protocol (see jreid.eval)."""

  name: str
  protocol: str
  query_kind: str
  query: Sequence[Record]
  gallery: Sequence[Record]


@dataclasses.dataclass(frozen=True)
class ReIDData:
  """A dataset as the trainer sees it: training records and evaluation tasks."""

  name: str
  train: Sequence[Record]
  tasks: dict[str, EvalTask]

  @property
  def num_train_ids(self) -> int:
    return len({r.pid for r in self.train})
