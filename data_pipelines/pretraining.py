"""Pretraining batches of an unlabeled corpus: multi-crop views of each image and the tokens of one caption.

Each image is decoded at the global crop size, then cropped (multicrop.py).
The corpus is read in a fresh random order every epoch; row r of global batch
b is corpus position b * batch_size + r of that endless order, and its crops
and caption are drawn from a generator seeded by (seed, b, r): a batch is a
pure function of its index, whichever process or worker loads it, so the
stream resumes exactly from its iterator state.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import grain
import numpy as np
from absl import logging

from data_pipelines.corpus import CorpusImage
from data_pipelines.images import ImageError, decode_image, random_flip
from data_pipelines.multicrop import MultiCropConfig, multi_crop
from data_pipelines.pipeline import batch_stream

_MAX_BAD_IN_A_ROW = 100  # Consecutive undecodable images before a row gives up.


@dataclasses.dataclass(frozen=True)
class PretrainBatchSpec:
  """A global batch of `batch_size` images, split evenly over `process_count` processes."""

  batch_size: int
  crops: MultiCropConfig = MultiCropConfig()
  seed: int = 0
  process_index: int = 0
  process_count: int = 1

  def __post_init__(self):
    if self.batch_size % self.process_count:
      raise ValueError(f"batch of {self.batch_size} does not split over {self.process_count} processes")


class _LoadPretrainBatch:
  """Picklable batch index -> this process's rows of that global batch."""

  def __init__(self, images: Sequence[CorpusImage], spec: PretrainBatchSpec,
               text: Callable[[str], np.ndarray] | None):
    if not images:
      raise ValueError("the pretraining corpus is empty")
    self.images, self.spec, self.text = tuple(images), spec, text
    self._orders: dict[int, np.ndarray] = {}  # The epochs' orders this process has drawn (the last two).

  def _image_at(self, position: int) -> int:
    epoch, offset = divmod(position, len(self.images))
    if epoch not in self._orders:
      self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
      self._orders[epoch] = np.random.default_rng([self.spec.seed, epoch]).permutation(len(self.images))
    return int(self._orders[epoch][offset])

  def _decode(self, position: int) -> tuple[np.ndarray, int, bool]:
    """(image at the global size, its corpus index, whether it replaced an undecodable one) of a position;
    a bad image is replaced by the next one of the order."""
    for step in range(_MAX_BAD_IN_A_ROW):
      index = self._image_at(position + step)
      try:
        return decode_image(self.images[index].path, self.spec.crops.global_size), index, step > 0
      except ImageError as error:
        logging.warning("%s; using the next image of the corpus order", error)
    raise ImageError(f"{_MAX_BAD_IN_A_ROW} corpus images in a row cannot be read, from position {position}")

  def __call__(self, batch: int) -> dict[str, np.ndarray]:
    spec = self.spec
    per_host = spec.batch_size // spec.process_count
    rows = range(spec.process_index * per_host, (spec.process_index + 1) * per_host)
    parts = {"global": [], "local": [], "index": [], "replaced": [], "photo": [], "text": [], "has_text": []}
    for row in rows:
      image, index, replaced = self._decode(int(batch) * spec.batch_size + row)
      rng = np.random.default_rng([spec.seed, int(batch), row])
      global_views, local_views = multi_crop(image, spec.crops, rng)
      parts["global"].append(global_views)
      parts["local"].append(local_views)
      parts["index"].append(index)
      parts["replaced"].append(replaced)
      if self.text is not None:
        parts["photo"].append(random_flip(image, rng))
        captions = self.images[index].captions
        parts["text"].append(self.text(captions[rng.integers(len(captions))] if captions else ""))
        parts["has_text"].append(bool(captions))
    out = {key: np.stack(parts[key]) for key in ("global", "local")}
    out.update(index=np.array(parts["index"], np.int32), replaced=np.array(parts["replaced"], np.int32))
    if self.text is not None:
      out.update(photo=np.stack(parts["photo"]), text=np.stack(parts["text"]).astype(np.int32),
                 has_text=np.array(parts["has_text"], np.int32))
    return out


def pretrain_batches(images: Sequence[CorpusImage], spec: PretrainBatchSpec,
                     text: Callable[[str], np.ndarray] | None = None, num_workers: int = 0) -> grain.IterDataset:
  """An endless, checkpointable stream of this process's rows of the global pretraining batches.

  Keys: global uint8 [B, 2, *crops.global_size, 3]; local uint8
  [B, crops.num_local, *crops.local_size, 3]; index (the corpus image) and
  replaced (1 where an undecodable image was replaced by the next one), int32
  [B]; with `text` (a picklable caption -> int32 [L] token ids, e.g.
  jreid.methods.text.TextTokens), photo uint8 [B, *crops.global_size, 3] (the
  whole image, flipped at random, colours kept: the view captions describe),
  text int32 [B, L], the tokens of one of the image's captions drawn per row,
  and has_text int32 [B] (0: no caption, the
  tokens of ''). No identity label.
  """
  return batch_stream(_LoadPretrainBatch(images, spec, text), num_workers)
