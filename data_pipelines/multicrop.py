"""Multi-crop views for self-distillation (DINO): 2 global crops at the training size, N local crops at about half.

Each view is a random resized crop (a box of a random fraction of the image's
area, its aspect near the output's, resized to the output size), then DINO's
photometric recipe: flip, colour jitter, grayscale, Gaussian blur (always on
the first global view, rarely on the second, half the time on local ones)
and solarisation (second global view only). NumPy + PIL on the host, uint8 in
and out.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageFilter

from data_pipelines.images import color_jitter, random_flip, random_grayscale


@dataclasses.dataclass(frozen=True)
class MultiCropConfig:
  """Sizes (H, W), area fractions and augmentation strengths of the views."""

  global_size: tuple[int, int] = (256, 128)
  local_size: tuple[int, int] = (128, 64)
  num_local: int = 6
  global_scale: tuple[float, float] = (0.4, 1.0)
  local_scale: tuple[float, float] = (0.05, 0.4)
  aspect: tuple[float, float] = (3 / 4, 4 / 3)  # Box aspect over the output's aspect.
  jitter: float = 0.4
  jitter_probability: float = 0.8
  grayscale: float = 0.2
  blur: tuple[float, float, float] = (1.0, 0.1, 0.5)  # Probability on global view 1, global view 2, local views.
  solarize: float = 0.2  # Probability on global view 2.


def sample_box(shape: tuple[int, int], size: tuple[int, int], scale: tuple[float, float],
               aspect: tuple[float, float], rng: np.random.Generator) -> tuple[int, int, int, int]:
  """(top, left, height, width) of a box covering a fraction in `scale` of an image of `shape` (H, W).

  Its width/height is the output's (size[1] / size[0]) times a log-uniform
  factor in `aspect`. After 10 boxes that do not fit, the largest box of the
  output's aspect, centred.
  """
  h, w = shape
  target_aspect = size[1] / size[0]
  for _ in range(10):
    area = rng.uniform(*scale) * h * w
    ratio = target_aspect * math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
    bw, bh = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
    if 0 < bw <= w and 0 < bh <= h:
      return int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw
  bh, bw = (h, max(1, min(w, round(h * target_aspect)))) if w / h > target_aspect else (
      max(1, min(h, round(w / target_aspect))), w)
  return (h - bh) // 2, (w - bw) // 2, bh, bw


def random_resized_crop(image: np.ndarray, size: tuple[int, int], scale: tuple[float, float],
                        aspect: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
  """A `sample_box` crop of `image` resized (bilinear) to `size` (H, W)."""
  top, left, bh, bw = sample_box(image.shape[:2], size, scale, aspect, rng)
  crop = Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR, box=(left, top, left + bw, top + bh))
  return np.asarray(crop)


def _photometric(image: np.ndarray, cfg: MultiCropConfig, blur: float, solarize: float,
                 rng: np.random.Generator) -> np.ndarray:
  image = random_flip(image, rng)
  if rng.random() < cfg.jitter_probability:
    image = color_jitter(image, rng, cfg.jitter)
  image = random_grayscale(image, rng, cfg.grayscale)
  if rng.random() < blur:
    image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(rng.uniform(0.1, 2.0))))
  if rng.random() < solarize:
    image = np.where(image >= 128, 255 - image, image).astype(np.uint8)
  return image


def multi_crop(image: np.ndarray, cfg: MultiCropConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """(global views uint8 [2, *global_size, 3], local views uint8 [num_local, *local_size, 3]) of one image."""
  views = [_photometric(random_resized_crop(image, cfg.global_size, cfg.global_scale, cfg.aspect, rng), cfg,
                        cfg.blur[v], cfg.solarize if v == 1 else 0.0, rng) for v in range(2)]
  local = [_photometric(random_resized_crop(image, cfg.local_size, cfg.local_scale, cfg.aspect, rng), cfg,
                        cfg.blur[2], 0.0, rng) for _ in range(cfg.num_local)]
  return np.stack(views), np.stack(local) if local else np.zeros((0, *cfg.local_size, 3), np.uint8)
