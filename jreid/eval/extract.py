"""Feature extraction for evaluation: jitted, fixed batch shape, padded last batch."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np
from data_pipelines.pipeline import eval_batches
from data_pipelines.records import Record
from jreid.progress import Progress


def padded_chunks(values: np.ndarray, batch_size: int) -> np.ndarray:
  """values [N, ...] zero-padded to whole batches: [num_batches, batch_size, ...]."""
  padded = np.zeros((-(-len(values) // batch_size) * batch_size, *values.shape[1:]), values.dtype)
  padded[:len(values)] = values
  return padded.reshape(-1, batch_size, *values.shape[1:])


def extract_image_features(encode: Callable, records: Sequence[Record], image_size: tuple[int, int],
                           batch_size: int, desc: str = "features") -> np.ndarray:
  """Features [N, D] of the records' images; `encode(uint8 [B, H, W, 3]) -> [B, D]` is jitted once."""
  chunks = []
  total = -(-len(records) // batch_size)
  with Progress(total, desc, "batch", leave=False, enabled=total >= 4, every_percent=25) as progress:
    for images, count in eval_batches(records, image_size, batch_size):
      chunks.append(encode(images)[:count])
      progress.update()
  return np.asarray(jax.device_get(jax.numpy.concatenate(chunks)), np.float32)
