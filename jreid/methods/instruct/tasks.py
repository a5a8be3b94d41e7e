"""Instruct-ReID's data side: each task's training rows, their instructions, and evaluation instructions."""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from data_pipelines import images as image_ops
from data_pipelines import instructions as instruction_pools
from data_pipelines.records import Record
from jreid.methods.instruct.kinds import ALL_TASKS, CAPTION, FUSION, NONE, QUERY_TASKS, TEMPLATE, TEXT
from jreid.methods.text import TextTokens


def _is_photo(record: Record) -> bool:
  return record.modality == "rgb" and record.scale == 1


class Outfits:
  """Per identity, its outfits (clothes ids) with their template images and clothes descriptions."""

  def __init__(self, records: Sequence[Record]):
    templates, descriptions = collections.defaultdict(set), collections.defaultdict(set)
    for r in records:
      if _is_photo(r) and r.clothes_id >= 0:
        if r.template:
          templates[(r.pid, r.clothes_id)].add(r.template)
        if r.instruction:
          descriptions[(r.pid, r.clothes_id)].add(r.instruction)
    self.templates = {key: sorted(v) for key, v in templates.items()}
    self.descriptions = {key: sorted(v) for key, v in descriptions.items()}
    self._templated, self._described = _outfits_by_pid(self.templates), _outfits_by_pid(self.descriptions)

  def with_templates(self, pid: int) -> list[int]:
    return self._templated.get(pid, [])

  def with_descriptions(self, pid: int) -> list[int]:
    return self._described.get(pid, [])


def _outfits_by_pid(keys) -> dict[int, list[int]]:
  by_pid = collections.defaultdict(list)
  for pid, clothes in sorted(keys):
    by_pid[pid].append(clothes)
  return dict(by_pid)


def task_records(kind: str, records: Sequence[Record], outfits: Outfits) -> list[Record]:
  """The training rows of one task kind.

  traditional: full-resolution photos of each identity's first outfit;
  clothes_changing: all its photos; visible_infrared: photos and infrared
  images of identities that have both; text: captioned photos;
  clothes_template / language_instructed: photos of identities with an outfit
  template / description (the instruction names one of the identity's
  outfits, drawn per row); cross_resolution: photos and low-resolution copies
  of identities that have both; sketch, text+sketch: photos and sketches of
  identities that have both (text+sketch: captioned sketches).
  """
  photos = [r for r in records if _is_photo(r)]
  if kind in QUERY_TASKS:
    if kind == "cross_resolution":
      others = [r for r in records if r.modality == "rgb" and r.scale > 1]
    else:
      others = [r for r in records if r.modality == "sketch" and (r.captions or kind == "sketch")]
    both = {r.pid for r in others} & {r.pid for r in photos}
    return [r for r in photos + others if r.pid in both]
  if kind == "traditional":
    first = {}
    for r in photos:
      first[r.pid] = min(first.get(r.pid, r.clothes_id), r.clothes_id)
    return [r for r in photos if r.clothes_id == first[r.pid]]
  if kind == "clothes_changing":
    return photos
  if kind == "visible_infrared":
    infrared = [r for r in records if r.modality == "ir"]
    both = {r.pid for r in infrared} & {r.pid for r in photos}
    return [r for r in photos + infrared if r.pid in both]
  if kind == "text":
    return [r for r in photos if r.captions]
  if kind == "clothes_template":
    return [r for r in photos if outfits.with_templates(r.pid)]
  if kind == "language_instructed":
    return [r for r in photos if outfits.with_descriptions(r.pid)]
  raise ValueError(f"unknown Instruct-ReID task {kind!r}; expected one of {ALL_TASKS}")


# What each task's rows need, for the line that says why a training set skips it.
NEEDS = {
    "traditional": "full-resolution photos", "clothes_changing": "full-resolution photos",
    "visible_infrared": "identities with both photos and infrared images", "text": "captioned photos",
    "clothes_template": "outfits with a clothes-template image", "language_instructed": "outfits with a description",
    "cross_resolution": "identities with both photos and low-resolution copies",
    "sketch": "identities with both photos and sketches", "text+sketch": "identities with photos and captioned sketches",
}


def trainable_tasks(kinds: Sequence[str], records: Sequence[Record]) -> tuple[list[str], dict[str, str]]:
  """The task kinds among `kinds` that have training rows in `records`, and for the others what they need."""
  outfits = Outfits(records)
  kept = [kind for kind in kinds if task_records(kind, records, outfits)]
  return kept, {kind: NEEDS[kind] for kind in kinds if kind not in kept}


class InstructionCompanions:
  """Per training row of one task: its identity, its instruction (token ids or a template) and the kind.

  Fixed-sentence tasks draw one paraphrase of their instruction
  (data_pipelines.instructions); text rows one of the photo's captions;
  clothes-template and language-instructed rows one of the identity's outfits
  (uniformly), then that outfit's template or one of its descriptions;
  text+sketch rows that are sketches one of their captions (FUSION); the
  other rows of the query tasks (cross_resolution, sketch) none. Picklable.
  """

  def __init__(self, kind: str, identities: dict[int, int], outfits: Outfits, tokens: TextTokens,
               template_size: tuple[int, int]):
    if kind not in ALL_TASKS:
      raise ValueError(f"unknown Instruct-ReID task {kind!r}; expected one of {ALL_TASKS}")
    self.kind, self.identities, self.outfits, self.tokens = kind, identities, outfits, tokens
    self.template_size = tuple(template_size)

  def __call__(self, record_index: int, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
    del record_index
    text, template, kind = "", None, TEXT
    if self.kind in QUERY_TASKS:
      kind = NONE
      if self.kind == "text+sketch" and record.modality == "sketch":
        text, kind = record.captions[rng.integers(len(record.captions))], FUSION
    elif self.kind in instruction_pools.POOLS:
      text = instruction_pools.draw(self.kind, rng)
    elif self.kind == "text":
      text, kind = record.captions[rng.integers(len(record.captions))], CAPTION
    elif self.kind == "clothes_template":
      options = self.outfits.with_templates(record.pid)
      paths = self.outfits.templates[(record.pid, options[rng.integers(len(options))])]
      template, kind = image_ops.decode_image(paths[rng.integers(len(paths))], self.template_size), TEMPLATE
    else:
      options = self.outfits.with_descriptions(record.pid)
      texts = self.outfits.descriptions[(record.pid, options[rng.integers(len(options))])]
      text = texts[rng.integers(len(texts))]
    return {
        "identity": np.int32(self.identities[record.pid]),
        "instruction": self.tokens(text),
        "template": np.zeros((*self.template_size, 3), np.uint8) if template is None else template,
        "instruction_kind": np.int32(kind),
    }


class EvalInstructions:
  """What an evaluation record's instruction is, as a pipeline source of template images (zeros if none).

  'image+template' queries use record.template; 'image+instruction' queries
  record.instruction; 'image' items (galleries, fixed-instruction queries) the
  template if they have one, else the instruction sentence if they have one;
  'sketch' queries none; 'text+sketch' queries their first caption (FUSION).
  """

  def __init__(self, records: Sequence[Record], kind: str):
    self.records = tuple(records)
    uses_template = lambda r: bool(r.template) and kind in ("image", "image+template")
    uses_text = lambda r: bool(r.instruction) and kind in ("image", "image+instruction")
    if kind == "text+sketch":
      self.kinds = np.array([FUSION if r.captions else NONE for r in records], np.int32)  # no text: sketch only
      self.texts = [r.captions[0] if r.captions else "" for r in records]
      return
    self.kinds = np.array([TEMPLATE if uses_template(r) else TEXT if uses_text(r) else NONE for r in records],
                          np.int32)
    self.texts = [r.instruction if k == TEXT else "" for r, k in zip(records, self.kinds)]

  def image(self, index: int, size: tuple[int, int]) -> np.ndarray:
    if self.kinds[index] != TEMPLATE:
      return np.zeros((*size, 3), np.uint8)
    return image_ops.decode_image(self.records[index].template, size)
