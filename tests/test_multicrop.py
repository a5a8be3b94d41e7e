"""Multi-crop views: shapes, crop areas and aspects, the crop's content, determinism."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from data_pipelines import multicrop


@pytest.mark.parametrize("scale", [(0.4, 1.0), (0.05, 0.4)])
def test_sample_box_area_aspect_and_bounds(scale):
  rng = np.random.default_rng(0)
  shape, size = (256, 128), (64, 32)
  for _ in range(300):
    top, left, h, w = multicrop.sample_box(shape, size, scale, (3 / 4, 4 / 3), rng)
    assert 0 <= top and top + h <= 256 and 0 <= left and left + w <= 128
    assert scale[0] * 0.9 <= h * w / (256 * 128) <= scale[1] * 1.02  # Rounding of the sides.
    assert 3 / 4 * 0.9 <= (w / h) / (32 / 64) <= 4 / 3 * 1.1


def test_sample_box_falls_back_to_the_centred_largest_box():
  # A wide strip cannot hold a tall box of 40-100% of its area: the largest box of the output's aspect, centred.
  assert multicrop.sample_box((10, 200), (20, 10), (0.4, 1.0), (1.0, 1.0), np.random.default_rng(0)) == (
      0, 97, 10, 5)


def test_random_resized_crop_resizes_its_box():
  image = np.random.default_rng(1).integers(0, 256, (40, 20, 3), dtype=np.uint8)
  # Scale (1, 1) and the output's aspect: the box is the whole image.
  got = multicrop.random_resized_crop(image, (20, 10), (1.0, 1.0), (1.0, 1.0), np.random.default_rng(2))
  np.testing.assert_array_equal(got, np.asarray(Image.fromarray(image).resize((10, 20), Image.BILINEAR)))
  # A quarter of the area: a box of 20 x 10 read at its own size is a plain slice of the image.
  rng = np.random.default_rng(3)
  top, left, h, w = multicrop.sample_box((40, 20), (20, 10), (0.25, 0.25), (1.0, 1.0), np.random.default_rng(3))
  np.testing.assert_array_equal(multicrop.random_resized_crop(image, (20, 10), (0.25, 0.25), (1.0, 1.0), rng),
                                image[top:top + h, left:left + w])


def test_multi_crop_views_shapes_and_scales():
  cfg = multicrop.MultiCropConfig(global_size=(32, 16), local_size=(16, 8), num_local=4)
  image = np.random.default_rng(4).integers(0, 256, (64, 32, 3), dtype=np.uint8)
  global_views, local_views = multicrop.multi_crop(image, cfg, np.random.default_rng(5))
  assert global_views.shape == (2, 32, 16, 3) and local_views.shape == (4, 16, 8, 3)
  assert global_views.dtype == local_views.dtype == np.uint8
  assert not np.array_equal(global_views[0], global_views[1])  # Two different crops.
  again = multicrop.multi_crop(image, cfg, np.random.default_rng(5))
  np.testing.assert_array_equal(again[0], global_views)
  np.testing.assert_array_equal(again[1], local_views)
  none = multicrop.multi_crop(image, dataclasses.replace(cfg, num_local=0), np.random.default_rng(5))[1]
  assert none.shape == (0, 16, 8, 3)


def test_local_views_see_smaller_parts_than_global_views():
  # On a vertical ramp (row index = value), a view's value range is the height it covers.
  ramp = np.repeat(np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 128, axis=1), 3, axis=2)
  cfg = multicrop.MultiCropConfig(global_size=(64, 32), local_size=(32, 16), num_local=6, jitter_probability=0.0,
                                  grayscale=0.0, blur=(0.0, 0.0, 0.0), solarize=0.0)
  rng = np.random.default_rng(6)
  spans = {"global": [], "local": []}
  for _ in range(20):
    global_views, local_views = multicrop.multi_crop(ramp, cfg, rng)
    spans["global"] += [int(v.max()) - int(v.min()) for v in global_views]
    spans["local"] += [int(v.max()) - int(v.min()) for v in local_views]
  # Global boxes cover >= 40% of the area, so >= ~sqrt(0.4 * 3/4) of the height; local ones <= ~sqrt(0.4 * 4/3).
  assert min(spans["global"]) >= 0.5 * 256 and max(spans["local"]) <= 0.75 * 256
  assert np.mean(spans["local"]) < 0.6 * np.mean(spans["global"])


def test_solarisation_only_on_the_second_global_view():
  cfg = multicrop.MultiCropConfig(global_size=(16, 8), local_size=(8, 4), num_local=2, jitter_probability=0.0,
                                  solarize=1.0)
  flat = np.full((32, 16, 3), 200, np.uint8)  # Crops, flips, blur and grayscale leave a flat gray image as it is.
  global_views, local_views = multicrop.multi_crop(flat, cfg, np.random.default_rng(7))
  assert np.all(global_views[0] == 200) and np.all(global_views[1] == 55) and np.all(local_views == 200)
