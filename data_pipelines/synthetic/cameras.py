"""The cameras of the synthetic set: scene, viewpoint, light, optics and occluders.

Cameras 0-5 are visible-light, 6-7 infrared. Each one films a fixed scene (a
wide background panorama that the person is cropped against), sees people
mostly from some directions, and has its own illumination, colour cast, blur,
noise, framing and occluders.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from data_pipelines.synthetic.figure import SCENE_BASE, VIEWS
from data_pipelines.synthetic.identities import Paint

# Scene materials (numbered from SCENE_BASE in the material map).
(WALL, WALL_DETAIL, WINDOW, FLOOR, FLOOR_DETAIL, FOLIAGE, SKY, POLE, OBJECT, SIGN, DOOR, BUSH) = range(
  SCENE_BASE, SCENE_BASE + 12)
PANORAMA_WIDTH = 4  # Panorama width in image widths.


@dataclasses.dataclass(frozen=True)
class Camera:
  """One camera. Probabilities of `views` follow figure.VIEWS."""

  camid: int
  modality: str  # 'rgb' or 'ir'
  wall: str  # 'windows', 'panels', 'bricks', 'foliage' or 'shops'
  floor: str  # 'slabs', 'tiles', 'asphalt', 'gravel' or 'grass'
  horizon: float  # Where the wall meets the floor, as a fraction of image height.
  views: tuple[float, float, float]
  gain: float
  cast: tuple[float, float, float]
  light_slope: float  # Left-to-right illumination gradient.
  vignette: float  # Fall-off of light towards the corners (an infrared illuminator: strong).
  blur: tuple[float, float]  # Gaussian blur sigma range, pixels.
  noise: float  # Sensor noise standard deviation, in [0, 1] intensity.
  fill: tuple[float, float]  # Person height over image height.
  occlusion: float  # Probability that an occluder stands in front of the person.
  occluders: tuple[str, ...]


CAMERAS = (
  Camera(0, "rgb", "windows", "slabs", 0.62, (0.6, 0.15, 0.25), 1.05, (1.05, 1.0, 0.92), 0.15, 0.1,
         (0.3, 0.6), 0.01, (0.84, 0.95), 0.1, ("pole", "bin")),
  Camera(1, "rgb", "panels", "tiles", 0.6, (0.15, 0.6, 0.25), 0.95, (0.94, 1.03, 0.97), -0.1, 0.15,
         (0.4, 0.8), 0.015, (0.82, 0.94), 0.1, ("bin", "railing")),
  Camera(2, "rgb", "foliage", "gravel", 0.55, (0.25, 0.2, 0.55), 0.9, (0.9, 0.98, 1.1), 0.25, 0.1,
         (0.6, 1.1), 0.015, (0.8, 0.92), 0.2, ("bush", "railing")),
  Camera(3, "rgb", "shops", "asphalt", 0.6, (0.35, 0.35, 0.3), 0.85, (1.0, 1.0, 1.0), 0.05, 0.2,
         (0.9, 1.5), 0.02, (0.7, 0.86), 0.15, ("car", "pole")),
  Camera(4, "rgb", "bricks", "slabs", 0.64, (0.5, 0.3, 0.2), 1.1, (1.02, 1.0, 0.98), -0.2, 0.1,
         (0.3, 0.7), 0.012, (0.84, 0.96), 0.45, ("pole", "railing", "bin", "car")),
  Camera(5, "rgb", "windows", "asphalt", 0.58, (0.3, 0.3, 0.4), 0.6, (1.12, 0.93, 0.74), 0.3, 0.3,
         (0.7, 1.2), 0.035, (0.8, 0.94), 0.15, ("pole", "car")),
  Camera(6, "ir", "panels", "tiles", 0.6, (0.5, 0.2, 0.3), 1.0, (1.0, 1.0, 1.0), 0.0, 0.55,
         (0.6, 1.0), 0.04, (0.82, 0.95), 0.1, ("bin", "railing")),
  Camera(7, "ir", "foliage", "asphalt", 0.55, (0.2, 0.45, 0.35), 0.9, (1.0, 1.0, 1.0), 0.1, 0.6,
         (0.8, 1.3), 0.05, (0.78, 0.92), 0.15, ("bush", "pole")),
)
VISIBLE_CAMERAS = tuple(c.camid for c in CAMERAS if c.modality == "rgb")
INFRARED_CAMERAS = tuple(c.camid for c in CAMERAS if c.modality == "ir")

# Scene material: (sRGB choices, near-infrared reflectance). Foliage is bright in
# near infrared, glass and asphalt dark.
_SCENE_PAINTS = {
  "windows": ((200, 190, 170), (170, 160, 150), (150, 110, 90), (210, 205, 195)),
  "panels": ((215, 212, 200), (190, 200, 205), (225, 215, 190)),
  "bricks": ((150, 72, 52), (130, 80, 60), (170, 100, 70)),
  "foliage": ((52, 100, 46), (70, 110, 50), (40, 80, 40)),
  "shops": ((90, 90, 95), (120, 110, 100), (70, 75, 85)),
  "slabs": ((165, 160, 150), (150, 150, 145), (180, 170, 155)),
  "tiles": ((195, 188, 175), (170, 172, 170), (200, 195, 185)),
  "asphalt": ((72, 72, 74), (85, 84, 82), (62, 64, 68)),
  "gravel": ((158, 142, 115), (140, 130, 110)),
  "grass": ((72, 120, 52), (80, 130, 60)),
}
_SCENE_IR = {"windows": 0.5, "panels": 0.6, "bricks": 0.55, "foliage": 0.85, "shops": 0.35, "slabs": 0.5,
             "tiles": 0.55, "asphalt": 0.22, "gravel": 0.5, "grass": 0.8}


def _jitter(rng: np.random.Generator, rgb, amount: int = 12) -> tuple[int, int, int]:
  return tuple(int(v) for v in np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255))


@functools.lru_cache(maxsize=16)
def scene_palette(camera: Camera, seed: int) -> dict[int, Paint]:
  """Paints of the scene materials of one camera (fixed per seed)."""
  rng = np.random.default_rng([seed, 7, camera.camid])
  choices = _SCENE_PAINTS[camera.wall]
  wall = _jitter(rng, choices[rng.integers(len(choices))])
  floor = _SCENE_PAINTS[camera.floor][rng.integers(len(_SCENE_PAINTS[camera.floor]))]
  floor = _jitter(rng, floor)
  wall_ir, floor_ir = _SCENE_IR[camera.wall], _SCENE_IR[camera.floor]
  detail = tuple(int(v * 0.75) for v in wall) if camera.wall != "bricks" else (190, 185, 175)
  sign = _jitter(rng, ((180, 40, 40), (40, 90, 170), (230, 190, 50), (40, 130, 80))[rng.integers(4)], 20)
  return {
    WALL: Paint(wall, wall_ir), WALL_DETAIL: Paint(detail, wall_ir * 0.8),
    WINDOW: Paint(_jitter(rng, (60, 75, 90)), 0.08), FLOOR: Paint(floor, floor_ir),
    FLOOR_DETAIL: Paint(tuple(int(v * 0.8) for v in floor), floor_ir * 0.8),
    FOLIAGE: Paint(_jitter(rng, (48, 96, 44)), 0.7), SKY: Paint((185, 205, 228), 0.12),
    POLE: Paint(_jitter(rng, (95, 98, 100)), 0.35), OBJECT: Paint(_jitter(rng, (120, 60, 50), 40), 0.4),
    SIGN: Paint(sign, 0.5), DOOR: Paint(_jitter(rng, (120, 90, 70), 20), 0.45),
    BUSH: Paint(_jitter(rng, (60, 110, 50)), 0.65),
  }


def _floor_lines(draw: ImageDraw.ImageDraw, size: tuple[int, int], horizon: int, tile: float, mat: int) -> None:
  h, w = size
  for t in np.linspace(0.0, 1.0, int(10 / tile))[1:]:
    y = horizon + (h - horizon) * t * t
    draw.line([(0, y), (w, y)], fill=mat, width=2)
  for x in np.arange(-w, 2 * w, 110 * tile):
    draw.line([(w / 2 + (x - w / 2) * 0.15, horizon), (x, h)], fill=mat, width=2)


def _wall(draw: ImageDraw.ImageDraw, camera: Camera, size: tuple[int, int], horizon: int,
          rng: np.random.Generator) -> None:
  h, w = size
  kind = camera.wall
  if kind == "foliage":
    draw.rectangle([0, 0, w, horizon], fill=SKY)
    x = 0
    while x < w:
      r = rng.uniform(40, 90)
      draw.ellipse([x - r, horizon * 0.35 - r * rng.uniform(0.2, 0.8), x + r, horizon + r], fill=FOLIAGE)
      x += r * rng.uniform(0.8, 1.4)
    for x in rng.uniform(0, w, 5):
      draw.rectangle([x, horizon * 0.55, x + rng.uniform(10, 18), horizon], fill=POLE)
    return
  draw.rectangle([0, 0, w, horizon], fill=WALL)
  if kind == "windows":
    for x in np.arange(rng.uniform(0, 60), w, rng.uniform(130, 170)):
      for y in (horizon * 0.08, horizon * 0.5):
        draw.rectangle([x, y, x + 70, y + horizon * 0.3], fill=WALL_DETAIL)
        draw.rectangle([x + 6, y + 6, x + 64, y + horizon * 0.3 - 6], fill=WINDOW)
    door = rng.uniform(0, w - 120)
    draw.rectangle([door, horizon * 0.45, door + 100, horizon], fill=DOOR)
  elif kind == "panels":
    for x in np.arange(rng.uniform(0, 80), w, 140):
      draw.line([(x, 0), (x, horizon)], fill=WALL_DETAIL, width=3)
    for x in rng.uniform(0, w - 110, 3):
      draw.rectangle([x, horizon * 0.3, x + 95, horizon], fill=DOOR)
      draw.ellipse([x + 78, horizon * 0.68, x + 88, horizon * 0.72], fill=POLE)
    draw.rectangle([0, horizon - 14, w, horizon], fill=WALL_DETAIL)
  elif kind == "bricks":
    for row, y in enumerate(np.arange(0, horizon, 18)):
      draw.line([(0, y), (w, y)], fill=WALL_DETAIL, width=3)
      for x in np.arange(row % 2 * 24, w, 48):
        draw.line([(x, y), (x, y + 18)], fill=WALL_DETAIL, width=3)
    for x in np.arange(rng.uniform(0, 100), w, 260):
      draw.rectangle([x, horizon * 0.1, x + 120, horizon * 0.22], fill=SIGN)
  else:  # shops
    for x in np.arange(0, w, 190):
      draw.rectangle([x + 14, horizon * 0.2, x + 176, horizon], fill=WINDOW)
      draw.rectangle([x, 0, x + 190, horizon * 0.16], fill=SIGN)
      draw.line([(x + 95, horizon * 0.2), (x + 95, horizon)], fill=WALL_DETAIL, width=4)


@functools.lru_cache(maxsize=16)
def panorama(camera: Camera, seed: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Scene material map and shade (texture) of a camera, `PANORAMA_WIDTH` images wide."""
  rng = np.random.default_rng([seed, 8, camera.camid])
  h, w = size[0], size[1] * PANORAMA_WIDTH
  horizon = int(camera.horizon * h)
  image = Image.new("L", (w, h), FLOOR)
  draw = ImageDraw.Draw(image)
  _wall(draw, camera, (h, w), horizon, rng)
  if camera.floor in ("slabs", "tiles"):
    _floor_lines(draw, (h, w), horizon, 1.0 if camera.floor == "slabs" else 0.6, FLOOR_DETAIL)
  elif camera.floor == "asphalt":
    draw.rectangle([0, horizon + (h - horizon) * 0.35, w, horizon + (h - horizon) * 0.38], fill=FLOOR_DETAIL)
  draw.line([(0, horizon), (w, horizon)], fill=WALL_DETAIL, width=4)
  rough = {"foliage": 0.15, "gravel": 0.18, "grass": 0.2, "asphalt": 0.12}
  noise = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 1.5)
  noise /= noise.std() + 1e-6
  mat = np.asarray(image)
  rows = np.arange(h)[:, None] < horizon
  amount = np.where(rows, rough.get(camera.wall, 0.05), rough.get(camera.floor, 0.06))
  amount = np.where(mat == SKY, 0.02, amount)
  shade = np.clip(1.0 + amount * noise, 0.4, 1.4).astype(np.float32)
  return mat, shade


def draw_occluder(mat: np.ndarray, shade: np.ndarray, kind: str, rng: np.random.Generator) -> None:
  """Paints an occluder in place over a (material, shade in [0, 1]) frame."""
  h, w = mat.shape
  layer_m, layer_s = Image.fromarray(mat), Image.fromarray(np.zeros_like(mat))
  dm, ds = ImageDraw.Draw(layer_m), ImageDraw.Draw(layer_s)

  def shape(kind_of, xy, material, **kw):
    getattr(dm, kind_of)(xy, fill=material, **kw)
    getattr(ds, kind_of)(xy, fill=255, **kw)

  side = rng.choice([-1, 1])
  if kind == "pole":
    x = w / 2 + side * rng.uniform(0.05, 0.4) * w
    shape("rectangle", [x, 0, x + rng.uniform(0.06, 0.12) * w, h], POLE)
  elif kind == "bin":
    x = w / 2 + side * rng.uniform(0.1, 0.45) * w
    top = h * rng.uniform(0.62, 0.75)
    shape("rounded_rectangle", [x - 0.28 * w, top, x + 0.28 * w, h + 10], OBJECT, radius=12)
  elif kind == "car":
    top = h * rng.uniform(0.64, 0.78)
    shape("rounded_rectangle", [-20, top, w + 20, h + 40], OBJECT, radius=40)
    shape("rectangle", [-20, top + 0.05 * h, w + 20, top + 0.08 * h], WINDOW)
  elif kind == "bush":
    base = h * rng.uniform(0.7, 0.82)
    for x in np.linspace(-0.1 * w, 1.1 * w, 6):
      r = rng.uniform(0.15, 0.25) * w
      shape("ellipse", [x - r, base - r * rng.uniform(0.3, 0.7), x + r, h + r], BUSH)
  elif kind == "railing":
    y = h * rng.uniform(0.5, 0.62)
    for dy in (0.0, 0.12 * h):
      shape("rectangle", [0, y + dy, w, y + dy + 0.018 * h], POLE)
    for x in np.arange(rng.uniform(0, 0.3 * w), w, 0.45 * w):
      shape("rectangle", [x, y, x + 0.04 * w, h], POLE)
  else:
    raise ValueError(f"unknown occluder {kind!r}")
  covered = np.asarray(layer_s) > 0
  mat[covered] = np.asarray(layer_m)[covered]
  shade[covered] = 1.0 - 0.12 * rng.random()


def sample_view(camera: Camera, rng: np.random.Generator) -> str:
  return VIEWS[rng.choice(len(VIEWS), p=camera.views)]
