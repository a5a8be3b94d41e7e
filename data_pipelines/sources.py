"""Random-access image sources for the pipelines: image files on disk, or a tfds build.

A source holds its records (labels, cameras, modalities: what sampling needs)
and decodes the image of record i on demand, in whichever process asks.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from data_pipelines.images import decode_image
from data_pipelines.records import Record

_READ_CHUNK = 256  # Examples read at a time while collecting a tfds split's records.


class Source(Protocol):
  """Records and the decoded image of each."""

  records: Sequence[Record]

  def image(self, index: int, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 [H, W, 3] of records[index]; ImageError naming the file if it cannot be decoded."""


class FileSource:
  """Records whose images are files on disk (a reader's output)."""

  def __init__(self, records: Sequence[Record]):
    self.records = tuple(records)

  def image(self, index: int, size: tuple[int, int]) -> np.ndarray:
    return decode_image(self.records[index].path, size)


class TfdsSource:
  """A split written by `data_pipelines.build`: records and encoded images from array_record files.

  The records are read once, here; images are read and decoded per access.
  """

  def __init__(self, split: Any):
    """`split`: one split of `build.data_source(...)` (a tfds ArrayRecordDataSource)."""
    self._split = split
    from data_pipelines import build  # tensorflow-datasets only when a tfds build is read
    self.records = tuple(build.example_to_record(example)
                         for start in range(0, len(split), _READ_CHUNK)
                         for example in split.__getitems__(range(start, min(start + _READ_CHUNK, len(split)))))

  def image(self, index: int, size: tuple[int, int]) -> np.ndarray:
    return decode_image(self._split[index]["image"], size, name=self.records[index].path)


def tfds_source(name: str, data_dir: str, split: str = "train", **options) -> TfdsSource:
  """The built `split` of dataset `name` (with its reader `options`) under tfds `data_dir`."""
  from data_pipelines import build
  splits = build.data_source(name, data_dir, **options)
  if split not in splits:
    raise KeyError(f"{name} in {data_dir} has no split {split!r} (empty splits are not written); "
                   f"built: {', '.join(sorted(splits))}")
  return TfdsSource(splits[split])


def as_source(data: Sequence[Record] | Source) -> Source:
  """`data` itself when it is a source, else a FileSource of the records."""
  return data if hasattr(data, "image") else FileSource(data)
