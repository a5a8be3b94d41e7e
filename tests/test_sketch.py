"""The XDoG sketch generator on photo-like images."""

import numpy as np
import pytest

from data_pipelines.sketch import sketch


def _photo() -> np.ndarray:
  """A photo-like image: lit background gradient, a dark coat, a red bag, sensor noise."""
  rng = np.random.default_rng(0)
  h, w = 256, 128
  image = np.zeros((h, w, 3), np.float32)
  image[:] = np.linspace(150, 210, w)[None, :, None]
  image[60:220, 40:88] = (60, 50, 45)
  image[120:150, 70:84] = (150, 40, 40)
  image += rng.normal(0, 3, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def test_shape_dtype_and_white_paper():
  out = sketch(_photo())
  assert out.shape == (256, 128, 3) and out.dtype == np.uint8
  assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
  flat = np.r_[out[5:50, 5:120, 0].ravel(), out[80:110, 50:65, 0].ravel()]
  assert np.mean(flat == 255) > 0.97


def test_strokes_follow_edges():
  out = sketch(_photo())[..., 0]
  assert out[60:220, 37:43].min(axis=1).mean() < 100  # The coat's left border.
  assert out[57:63, 45:85].min(axis=0).mean() < 100  # Its top border.
  assert out[118:152, 68:73].min() < 100  # The bag: a colour edge on the coat.


def test_grayscale_input_and_mask():
  photo = _photo()
  mask = np.zeros(photo.shape[:2], bool)
  mask[60:220, 40:88] = True
  out = sketch(photo[..., 0], mask)[..., 0]
  assert out.shape == (256, 128)
  assert (out[:, :35] == 255).all() and (out[:50] == 255).all()
  assert out[100, 40] < 50 and out[219, 60] < 50  # The silhouette is drawn.


def test_rejects_float_images():
  with pytest.raises(ValueError, match="uint8"):
    sketch(np.zeros((8, 8, 3), np.float32))
