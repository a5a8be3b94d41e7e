"""Pencil-sketch generator (XDoG) for any photo: synthetic pedestrians or real crops.

Extended difference of Gaussians (Winnemoeller et al. 2012): the difference of
two blurs of an image is negative on the dark side of every edge; a soft
threshold turns it into dark strokes on white paper. Each colour channel is
stretched to its own 1st-99th percentile range and the strongest response over
the channels is kept, so that edges between colours of equal brightness (a red
bag on a brown coat) are drawn and dim and bright photos give similar strokes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def sketch(image: np.ndarray, mask: np.ndarray | None = None, sigma: float = 0.9, k: float = 1.6,
           tau: float = 0.99, epsilon: float = -0.12, phi: float = 6.0, min_stroke: int = 10) -> np.ndarray:
  """Draws `image` (uint8 (H, W, 3) or (H, W)) as a sketch: uint8 (H, W, 3), black strokes on white.

  Args:
    image: the photo.
    mask: optional (H, W) bool foreground (the person): its outline is drawn
      and strokes outside it (dilated by two pixels) are erased, as in a sketch
      of the person alone.
    sigma: scale of the finer Gaussian, pixels; `k` times it is the coarser one.
    tau: weight of the coarser Gaussian (< 1 keeps flat regions white).
    epsilon: threshold on the difference, in units of the strongest edges
      (99th percentile in the mask); lower gives fewer, bolder strokes.
    phi: steepness of the soft threshold.
    min_stroke: strokes of fewer pixels (sensor noise, texture) are erased.
  """
  if image.ndim not in (2, 3) or image.dtype != np.uint8:
    raise ValueError(f"expected a uint8 (H, W[, 3]) image, got {image.dtype} {image.shape}")
  x = image.astype(np.float32) / 255.0
  channels = ndimage.median_filter(x[..., None] if x.ndim == 2 else x[..., :3], size=(3, 3, 1))  # Sensor noise.
  differences = []
  for c in range(channels.shape[-1]):
    plane = channels[..., c]
    low, high = np.percentile(plane, (1, 99))
    plane = np.clip((plane - low) / max(high - low, 0.1), 0.0, 1.0)
    differences.append(ndimage.gaussian_filter(plane, sigma) - tau * ndimage.gaussian_filter(plane, sigma * k))
  difference = np.min(differences, axis=0)
  region = np.ones(difference.shape, bool) if mask is None else ndimage.binary_dilation(mask, iterations=2)
  difference /= max(float(np.percentile(np.abs(difference[region]), 99)), 1e-4)
  paper = np.where(difference >= epsilon, 1.0, 1.0 + np.tanh(phi * (difference - epsilon)))
  ink = (paper < 0.9) & region
  labels, count = ndimage.label(ink, structure=np.ones((3, 3)))
  sizes = np.bincount(labels.ravel(), minlength=count + 1)
  sizes[0] = 0
  paper = np.where(sizes[labels] >= min_stroke, paper, 1.0)
  if mask is not None:  # An artist always draws the silhouette, even against a similar background.
    paper = np.where(mask & ~ndimage.binary_erosion(mask), np.minimum(paper, 0.1), paper)
  out = np.round(np.clip(paper, 0.0, 1.0) * 255.0).astype(np.uint8)
  return np.repeat(out[..., None], 3, axis=2)
