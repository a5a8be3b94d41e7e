"""Image decoding and augmentation on the host (NumPy + PIL), uint8 in and out."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


class ImageError(ValueError):
  """An image could not be decoded; the message names its file, `path`."""

  def __init__(self, message: str, path: str = ""):
    super().__init__(message)
    self.path = path


def decode_image(data: str | bytes, size: tuple[int, int], name: str = "") -> np.ndarray:
  """Decodes an image file (a path, or its bytes) as RGB uint8 [H, W, 3] resized to size=(H, W).

  Raises:
    ImageError: naming `name` (default: the path) when the file is missing,
      unreadable, truncated or not an image.
  """
  name = name or (data if isinstance(data, str) else "<bytes>")
  try:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
      image.draft("RGB", (size[1], size[0]))  # JPEG: decode at a reduced scale when much larger.
      if image.mode != "RGB":
        image = image.convert("RGB")
      if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
      return np.asarray(image, dtype=np.uint8)
  except Exception as error:  # pylint: disable=broad-except
    # PIL signals bad data with many exception types (OSError, SyntaxError, struct.error, ...).
    raise ImageError(f"cannot read image {name!r}: {error}", name) from error


def random_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Mirrors left-right with probability 0.5 (into a contiguous array: later copies stay fast)."""
  if rng.random() >= 0.5:
    return image
  h, w, c = image.shape
  columns = (np.arange(w)[::-1, None] * c + np.arange(c)).ravel()
  return np.take(image.reshape(h, w * c), columns, axis=1).reshape(image.shape)


def random_crop_with_padding(image: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
  """Zero-pads by `padding` pixels and crops back to the original size at a random offset."""
  if padding <= 0:
    return image
  h, w = image.shape[:2]
  dy, dx = np.clip(rng.integers(-padding, padding + 1, size=2), [-h, -w], [h, w])
  out = np.zeros_like(image)
  out[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)] = (
      image[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)])
  return out


def random_erasing(image: np.ndarray, rng: np.random.Generator, probability: float = 0.5,
                   area: tuple[float, float] = (0.02, 0.4), min_aspect: float = 0.3) -> np.ndarray:
  """Replaces a random rectangle with uniform noise (Zhong et al. 2020)."""
  if rng.random() >= probability:
    return image
  h, w = image.shape[:2]
  for _ in range(100):
    target = rng.uniform(*area) * h * w
    aspect = np.exp(rng.uniform(np.log(min_aspect), -np.log(min_aspect)))
    eh, ew = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
    if 0 < eh < h and 0 < ew < w:
      top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
      image = image.copy()
      image[top:top + eh, left:left + ew] = rng.integers(0, 256, size=(eh, ew, image.shape[2]), dtype=np.uint8)
      return image
  return image


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
  """Random brightness, contrast and saturation scaling by factors in [1 - s, 1 + s].

  Brightness scales the pixels, contrast their distance from the image mean,
  saturation their distance from the pixel's channel mean; the three compose
  into one affine colour map, which PIL applies (rounding and clipping).
  """
  brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
  matrix = contrast * brightness * (saturation * np.eye(3) + (1 - saturation) / 3 * np.ones((3, 3)))
  offset = (1 - contrast) * brightness * image.mean()
  affine = np.concatenate([matrix, np.full((3, 1), offset)], axis=1)
  return np.asarray(Image.fromarray(image).convert("RGB", matrix=tuple(affine.ravel())))


def random_grayscale(image: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
  """With the given probability, all three channels become the luminance (visible-infrared bridging)."""
  if rng.random() >= probability:
    return image
  gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  return np.repeat(gray[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)


def channel_exchange(image: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
  """With the given probability, all three channels become one of them, drawn uniformly.

  The channel augmentation of Ye et al. (CAJ, ICCV 2021) for visible images:
  a single-channel picture looks like an infrared one and keeps its texture.
  """
  if rng.random() >= probability:
    return image
  return np.repeat(image[..., rng.integers(3), None], 3, axis=2)
