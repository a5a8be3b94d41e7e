"""Evaluation tasks of the synthetic set, assembled from the rendered test identities.

Each test identity has, per outfit, photos 0..n-1 from three visible
cameras (photo 0 is its query photo, the others are gallery photos), a
low-resolution copy of photo 0, a sketch of photo 1 and a clothes template,
plus infrared shots from the infrared cameras.

Gallery match rules by protocol (`is_match`; every query keeps at least one
match, queries without one are dropped):
  standard          same pid, other camera (same pid and camera: ignored)
  cc                same pid, other camera, other clothes (the rest of the
                    same pid: ignored)
  v2i               same pid (the gallery holds only the other modality)
  cross_resolution  same pid, other camera (low-resolution queries)
  text              same pid, the described photo included (text queries
                    have no camera, camid -1, and no source)
  sketch            same pid, except the photo the sketch was drawn from
  text+sketch       as sketch
  target_clothes    same pid wearing query.target_clothes_id (same pid in
                    other clothes: a non-match that ranks high); the gallery
                    photos carry no instruction, since their own outfit's
                    template or description would name the answer
The clothes-changing, visible-infrared and cross-resolution tasks carry their
unsupervised scenario ('clothes_change', 'visible_infrared',
'cross_resolution') on every record, as the training records do.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from data_pipelines import instructions
from data_pipelines.records import EvalTask, Record


@dataclasses.dataclass(frozen=True)
class Item:
  """A rendered image: kind ('photo', 'ir', 'sketch', 'lowres', 'template'), outfit and shot index."""

  kind: str
  outfit: int
  index: int
  record: Record


def is_match(protocol: str, query: Record, item: Record) -> bool:
  """Whether gallery `item` is a true match of `query` under `protocol` (see module doc)."""
  if query.pid != item.pid:
    return False
  if protocol in ("standard", "cross_resolution"):
    return item.camid != query.camid
  if protocol == "cc":
    return item.camid != query.camid and item.clothes_id != query.clothes_id
  if protocol in ("v2i", "text"):
    return True
  if protocol in ("sketch", "text+sketch"):
    return item.path != query.source
  if protocol == "target_clothes":
    return item.clothes_id == query.target_clothes_id
  raise ValueError(f"unknown protocol {protocol!r}")


def _task(name: str, protocol: str, query_kind: str, query: list[Record], gallery: list[Record]) -> EvalTask:
  by_pid = collections.defaultdict(list)
  for record in gallery:
    by_pid[record.pid].append(record)
  query = [q for q in query if any(is_match(protocol, q, g) for g in by_pid[q.pid])]
  return EvalTask(name, protocol, query_kind, tuple(query), tuple(gallery))


def _instructed(records, task: str, rng: np.random.Generator, scenario: str = "") -> list[Record]:
  return [dataclasses.replace(r, instruction=instructions.draw(task, rng), template="", scenario=scenario)
          for r in records]


def _plain(records, scenario: str = "") -> list[Record]:
  return [dataclasses.replace(r, instruction="", template="", scenario=scenario) for r in records]


def build_tasks(items: list[Item], seed: int) -> dict[str, EvalTask]:
  """The evaluation tasks over the test identities' rendered `items`."""
  photos = [i for i in items if i.kind == "photo"]
  queries = [i for i in photos if i.index == 0]
  gallery = [i.record for i in photos if i.index > 0]
  num_outfits = collections.Counter(i.record.pid for i in items if i.kind == "template")
  changing = [i for i in queries if num_outfits[i.record.pid] > 1]
  clothes = {(i.record.pid, i.outfit): i.record.clothes_id for i in items if i.kind == "template"}
  templates = {(i.record.pid, i.outfit): i.record.path for i in items if i.kind == "template"}
  described = {(i.record.pid, i.outfit): i.record.instruction for i in photos if i.index == 1}
  rngs = [np.random.default_rng([seed, 5, k]) for k in range(3)]

  def target(item: Item) -> tuple[int, int]:
    return item.record.pid, (item.outfit + 1) % num_outfits[item.record.pid]

  sketches = [i.record for i in items if i.kind == "sketch"]
  text = [Record("", p.pid, -1, p.clothes_id, captions=(c,))
          for p in (i.record for i in photos if i.index == 1) for c in p.captions]
  tasks = [
    _task("traditional", "standard", "image",
          _instructed([i.record for i in queries if i.outfit == 0], "traditional", rngs[0]),
          _instructed([i.record for i in photos if i.index > 0 and i.outfit == 0], "traditional", rngs[0])),
    _task("clothes_changing", "cc", "image",
          _instructed([i.record for i in changing], "clothes_changing", rngs[1], "clothes_change"),
          _instructed(gallery, "clothes_changing", rngs[1], "clothes_change")),
    _task("visible_infrared", "v2i", "image",
          _instructed([i.record for i in queries], "visible_infrared", rngs[2], "visible_infrared"),
          _instructed([i.record for i in items if i.kind == "ir"], "visible_infrared", rngs[2], "visible_infrared")),
    _task("cross_resolution", "cross_resolution", "image",
          _plain((i.record for i in items if i.kind == "lowres"), "cross_resolution"),
          _plain(gallery, "cross_resolution")),
    _task("text", "text", "text", text, _plain(gallery)),
    _task("sketch", "sketch", "sketch", [dataclasses.replace(s, captions=()) for s in sketches], _plain(gallery)),
    _task("text+sketch", "text+sketch", "text+sketch", [dataclasses.replace(s, captions=s.captions[:1])
                                                        for s in sketches], _plain(gallery)),
    _task("clothes_template", "target_clothes", "image+template",
          [dataclasses.replace(i.record, instruction="", template=templates[target(i)],
                               target_clothes_id=clothes[target(i)]) for i in changing],
          _plain(gallery)),
    _task("language_instructed", "target_clothes", "image+instruction",
          [dataclasses.replace(i.record, instruction=described[target(i)], template="",
                               target_clothes_id=clothes[target(i)]) for i in changing],
          _plain(gallery)),
  ]
  return {task.name: task for task in tasks}
