"""Renders photos, infrared images, clothes templates and low-resolution copies.

A shot is staged once as a material map (figure.py over a camera's scene) at
twice the output resolution; a visible camera develops it with each
material's colour, an infrared camera with each material's near-infrared
reflectance, then both apply their optics (light fall-off, blur, noise).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image
from scipy import ndimage

from data_pipelines.synthetic import cameras, figure
from data_pipelines.synthetic.identities import Identity, Outfit, Paint

HEIGHT, WIDTH = 256, 128
SUPERSAMPLE = 2
_CANVAS = (HEIGHT * SUPERSAMPLE, WIDTH * SUPERSAMPLE)
_NUM_MATERIALS = 32
_GAMMA = 2.2


@dataclasses.dataclass(frozen=True)
class Staged:
  """A shot before development: material map, shade in [0, ~1.4], paints by material id."""

  mat: np.ndarray
  shade: np.ndarray
  paints: dict[int, Paint]
  view: str

  def person_mask(self) -> np.ndarray:
    """Output-resolution mask of the visible person."""
    person = (self.mat > figure.BACKGROUND) & (self.mat < figure.SCENE_BASE)
    return _downsample(person.astype(np.float32)) > 0.25


def person_paints(identity: Identity, outfit: Outfit) -> dict[int, Paint]:
  """Paints of the person's materials (figure.SKIN, ...) in this outfit."""
  upper = outfit.upper_paint
  return {
    figure.SKIN: identity.skin_paint, figure.HAIR: identity.hair_paint,
    figure.FACE: Paint((70, 42, 40), 0.3), figure.UPPER: upper, figure.PATTERN: outfit.pattern_paint,
    figure.TRIM: Paint(tuple(int(v * 0.72) for v in upper.rgb), upper.ir * 0.85),
    figure.INNER: outfit.inner_paint, figure.LOWER: outfit.lower_paint,
    figure.STITCH: Paint((196, 152, 72), 0.6), figure.SHOES: outfit.shoes_paint,
    figure.SOLE: Paint((226, 224, 218), 0.8), figure.BAG: identity.bag_paint,
    figure.ACCESSORY: identity.accessory_paint, figure.LENS: Paint((22, 22, 28), 0.1),
  }


def _table(paints: dict[int, Paint]) -> tuple[np.ndarray, np.ndarray]:
  """Linear-light colour (N, 3) and infrared (N,) lookup tables."""
  rgb, ir = np.zeros((_NUM_MATERIALS, 3), np.float32), np.zeros(_NUM_MATERIALS, np.float32)
  for index, paint in paints.items():
    rgb[index] = (np.asarray(paint.rgb, np.float32) / 255.0) ** _GAMMA
    ir[index] = paint.ir
  return rgb, ir


def _downsample(x: np.ndarray) -> np.ndarray:
  """Box-filters a SUPERSAMPLE=2 canvas to the output resolution."""
  return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * 0.25


def stage(identity: Identity, outfit: Outfit, camera: cameras.Camera, seed: int,
          rng: np.random.Generator) -> Staged:
  """Places the person in a pose and view in front of the camera's scene."""
  view = cameras.sample_view(camera, rng)
  pose = figure.Pose(phase=rng.uniform(0, 2 * math.pi), stride=rng.uniform(0.25, 1.0),
                     arm_spread=rng.uniform(0.0, 0.1))
  h, w = _CANVAS
  height = min(0.985, rng.uniform(*camera.fill) * identity.stature ** 0.8) * h
  soles = h * (1.0 - rng.uniform(0.004, 0.03))
  box = (w / 2 + rng.uniform(-0.08, 0.08) * w, soles - height, height)
  mat, shade = figure.draw_person(identity, outfit, view, pose, _CANVAS, box,
                                  shadow=int(rng.uniform(120, 190)))
  if view == "side" and rng.random() < 0.5:
    mat, shade = mat[:, ::-1], shade[:, ::-1]
  scene_mat, scene_shade = cameras.panorama(camera, seed, _CANVAS)
  x0 = rng.integers(0, scene_mat.shape[1] - w + 1)
  scene_mat, scene_shade = scene_mat[:, x0:x0 + w], scene_shade[:, x0:x0 + w]
  person = mat > figure.BACKGROUND
  shade = ndimage.gaussian_filter(shade.astype(np.float32) / 255.0, SUPERSAMPLE * 0.6)
  shade = shade * np.where(person, 1.0, scene_shade)
  mat = np.where(person, mat, scene_mat)
  if rng.random() < camera.occlusion:
    cameras.draw_occluder(mat, shade, camera.occluders[rng.integers(len(camera.occluders))], rng)
  paints = person_paints(identity, outfit) | cameras.scene_palette(camera, seed)
  return Staged(mat, shade, paints, view)


def _illumination(camera: cameras.Camera, rng: np.random.Generator) -> np.ndarray:
  """Light across the frame: a gradient and a fall-off from an off-centre spot."""
  h, w = _CANVAS
  ys = np.arange(h, dtype=np.float32)[:, None] / h
  xs = np.arange(w, dtype=np.float32)[None, :] / w
  cy, cx = rng.uniform(0.35, 0.55), rng.uniform(0.35, 0.65)
  r2 = (ys - cy) ** 2 + (xs - cx) ** 2 * 0.5
  slope = np.float32(camera.light_slope * rng.uniform(0.6, 1.4))
  return (1.0 + slope * (xs - 0.5)) * np.clip(1.0 - np.float32(camera.vignette * 2.5) * r2, 0.2, 1.0)


def _optics(linear: np.ndarray, camera: cameras.Camera, rng: np.random.Generator, response) -> np.ndarray:
  """Down-samples linear light, applies the sensor `response`, blur and noise; returns uint8."""
  x = response(np.clip(_downsample(linear), 0.0, 1.0))
  sigma = rng.uniform(*camera.blur)
  x = ndimage.gaussian_filter(x, (sigma, sigma) + (0,) * (x.ndim - 2))
  x = x + rng.normal(0.0, camera.noise, x.shape[:2] + (1,) * (x.ndim - 2)).astype(np.float32)
  x = x + rng.normal(0.0, camera.noise * 0.5, x.shape).astype(np.float32)
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _srgb(x: np.ndarray) -> np.ndarray:
  return x ** (1 / _GAMMA)


def _infrared_response(x: np.ndarray) -> np.ndarray:
  """Infrared sensors respond steeply: dark stays dark, mid-tones bloom."""
  return 1.0 / (1.0 + np.exp(-5.0 * (x ** 0.8 - 0.5)))


def develop_rgb(staged: Staged, camera: cameras.Camera, rng: np.random.Generator) -> np.ndarray:
  """The visible-light photo of a staged shot, uint8 (H, W, 3)."""
  rgb, _ = _table(staged.paints)
  cast = np.asarray(camera.cast, np.float32) * rng.uniform(0.96, 1.04, 3).astype(np.float32)
  light = _illumination(camera, rng) * staged.shade * np.float32(camera.gain * rng.uniform(0.85, 1.15))
  return _optics((rgb * cast)[staged.mat] * light[..., None], camera, rng, _srgb)


def develop_infrared(staged: Staged, camera: cameras.Camera, rng: np.random.Generator) -> np.ndarray:
  """The near-infrared image of a staged shot: one intensity repeated in 3 channels, uint8."""
  _, ir = _table(staged.paints)
  light = _illumination(camera, rng) * staged.shade * np.float32(camera.gain * rng.uniform(0.85, 1.15))
  gray = _optics(ir[staged.mat] * light, camera, rng, _infrared_response)
  return np.repeat(gray[..., None], 3, axis=2)


def photo(identity: Identity, outfit: Outfit, camera: cameras.Camera, seed: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
  """(image, person mask, view) of one shot; infrared cameras give infrared images."""
  staged = stage(identity, outfit, camera, seed, rng)
  develop = develop_infrared if camera.modality == "ir" else develop_rgb
  return develop(staged, camera, rng), staged.person_mask(), staged.view


def template(identity: Identity, outfit: Outfit) -> np.ndarray:
  """The clothes alone, front view on a light backdrop (a shop's product photo)."""
  h, w = _CANVAS
  mat, shade = figure.draw_person(identity, outfit, "front", figure.Pose(0.0, 0.0, 0.9), _CANVAS,
                                  (w / 2, 0.03 * h, 0.94 * h), garments_only=True)
  rgb, _ = _table(person_paints(identity, outfit) | {figure.BACKGROUND: Paint((238, 238, 235), 1.0)})
  shade = ndimage.gaussian_filter(shade.astype(np.float32) / 255.0, SUPERSAMPLE * 0.5)
  image = _srgb(np.clip(_downsample(rgb[mat] * shade[..., None]), 0, 1))
  return np.round(image * 255.0).astype(np.uint8)


def low_resolution(image: np.ndarray, scale: int) -> np.ndarray:
  """Down-samples by `scale` and up-samples back to the original size (bicubic)."""
  h, w = image.shape[:2]
  small = Image.fromarray(image).resize((max(1, w // scale), max(1, h // scale)), Image.BICUBIC)
  return np.asarray(small.resize((w, h), Image.BICUBIC))
