"""Bicubic resizing of a ViT position-embedding grid (done once, at load time).

Matches torch `F.interpolate(mode='bicubic', align_corners=False)` with a
target `size`, which is what Hugging Face CLIP's `interpolate_pos_encoding`
uses: Keys cubic convolution with a = -0.75 and edge indices clamped. The
arithmetic is float64 (equal to torch's float64 result to rounding; torch's
own float32 result differs from both by its float32 rounding, ~1e-6).
"""

from __future__ import annotations

import numpy as np

_CUBIC_A = -0.75


def _cubic_weights(t: np.ndarray) -> np.ndarray:
  """Weights [..., 4] of the taps at offsets -1, 0, 1, 2 for fractions t in [0, 1)."""

  def near(x):  # |x| <= 1
    return ((_CUBIC_A + 2) * x - (_CUBIC_A + 3)) * x * x + 1

  def far(x):  # 1 < |x| < 2
    return ((_CUBIC_A * x - 5 * _CUBIC_A) * x + 8 * _CUBIC_A) * x - 4 * _CUBIC_A

  return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_matrix(src: int, dst: int) -> np.ndarray:
  """[dst, src] float64 matrix that resizes one axis of length src to dst."""
  centers = (np.arange(dst) + 0.5) * (src / dst) - 0.5
  left = np.floor(centers)
  weights = _cubic_weights(centers - left)
  taps = np.clip(left[:, None].astype(np.int64) + np.arange(-1, 3), 0, src - 1)
  matrix = np.zeros((dst, src))
  np.add.at(matrix, (np.repeat(np.arange(dst), 4), taps.ravel()), weights.ravel())
  return matrix


def resize_grid(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bicubically resizes a [H, W, C] array to [size[0], size[1], C]."""
  rows = bicubic_matrix(grid.shape[0], size[0])
  cols = bicubic_matrix(grid.shape[1], size[1])
  out = np.einsum("yh,xw,hwc->yxc", rows, cols, grid.astype(np.float64))
  return out.astype(grid.dtype)


def resize_pos_embed(pos_embed: np.ndarray, src_grid: tuple[int, int],
                     dst_grid: tuple[int, int]) -> np.ndarray:
  """Resizes a [1 + rows * cols, C] position embedding; the class token is kept.

  Args:
    pos_embed: class-token position first, then the grid in row-major order.
    src_grid: (rows, cols) of pos_embed's grid.
    dst_grid: (rows, cols) wanted.

  Returns:
    [1 + dst_rows * dst_cols, C] array of pos_embed's dtype.
  """
  pos_embed = np.asarray(pos_embed)
  if pos_embed.shape[0] != 1 + src_grid[0] * src_grid[1]:
    raise ValueError(f"position embedding {pos_embed.shape} does not hold a class token "
                     f"and a {src_grid[0]}x{src_grid[1]} grid")
  grid = pos_embed[1:].reshape(*src_grid, -1)
  resized = resize_grid(grid, dst_grid).reshape(-1, pos_embed.shape[-1])
  return np.concatenate([pos_embed[:1], resized], axis=0)
