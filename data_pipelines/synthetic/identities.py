"""Attributes of the synthetic pedestrians: who they are and what they wear.

Every attribute is drawn from a small, skewed vocabulary so that many
identities share each value (black hair, a black jacket, blue jeans): colour or
any single attribute alone cannot tell two people apart.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# name: (sampling weight, sRGB). Weights follow what city crowds wear.
COLOURS = {
  "black": (7, (30, 30, 32)),
  "white": (4, (232, 232, 226)),
  "grey": (5, (125, 125, 128)),
  "navy": (4, (32, 42, 88)),
  "blue": (3, (48, 92, 178)),
  "light blue": (2, (140, 178, 218)),
  "red": (2, (176, 34, 38)),
  "green": (2, (44, 116, 62)),
  "olive": (1, (98, 102, 52)),
  "yellow": (1, (222, 192, 52)),
  "orange": (1, (226, 118, 34)),
  "pink": (1, (226, 148, 168)),
  "purple": (1, (108, 62, 138)),
  "brown": (2, (108, 70, 42)),
  "beige": (2, (198, 178, 140)),
}
SKIN_TONES = {
  "pale": (238, 206, 186), "fair": (226, 184, 152), "light brown": (198, 150, 110),
  "tan": (172, 122, 84), "brown": (128, 86, 56), "dark brown": (88, 58, 40),
}
# name: (sampling weight, sRGB, near-infrared reflectance: pigment, unlike dye, shows).
HAIR_COLOURS = {
  "black": (4, (24, 22, 22), 0.18), "dark brown": (3, (58, 40, 30), 0.25),
  "brown": (2, (104, 70, 44), 0.35), "blonde": (1.2, (206, 170, 104), 0.62),
  "grey": (0.8, (160, 158, 154), 0.7), "red": (0.4, (150, 62, 34), 0.45),
}

# name: (sampling weight, body width or height factor).
BUILDS = {"slim": (3, 0.88), "average": (4, 1.0), "heavy": (2, 1.16)}
HEIGHTS = {"short": (1, 0.93), "medium": (2, 1.0), "tall": (1, 1.06)}
HAIR_STYLES = {"short": 3, "buzz": 1, "bald": 0.4, "long": 2, "ponytail": 1.2, "bun": 0.8, "curly": 1}
ACCESSORIES = {"none": 5, "glasses": 2, "sunglasses": 0.8, "cap": 1.2, "hat": 0.6, "mask": 0.8, "headphones": 0.6}
BAGS = {"none": 3, "backpack": 2.5, "shoulder bag": 1.5, "handbag": 1}

# Upper garment kind: (sampling weight, possible sleeve lengths).
UPPERS = {
  "t-shirt": (3, ("short", "short", "long")),
  "tank top": (0.7, ("none",)),
  "shirt": (2, ("long", "short")),
  "sweater": (2, ("long",)),
  "hoodie": (2, ("long",)),
  "jacket": (2, ("long",)),
  "coat": (1, ("long",)),
}
PATTERNS = {"plain": 6, "striped": 2, "checked": 1, "dotted": 0.7, "logo": 1}
# Lower garment kind: (sampling weight, colours it comes in).
LOWERS = {
  "trousers": (3, ("black", "grey", "navy", "beige", "brown", "olive")),
  "jeans": (3, ("blue", "light blue", "black", "grey", "navy")),
  "shorts": (1.2, tuple(COLOURS)),
  "skirt": (1, tuple(COLOURS)),
  "long skirt": (0.6, tuple(COLOURS)),
}
SHOES = {
  "sneakers": (3, ("white", "black", "grey", "red", "blue")),
  "boots": (1, ("black", "brown")),
  "leather shoes": (1.5, ("black", "brown")),
}
INNER_COLOURS = ("white", "grey", "black", "light blue")
OUTFIT_COUNTS = {1: 0.2, 2: 0.5, 3: 0.3}


@dataclasses.dataclass(frozen=True)
class Paint:
  """How a material looks: sRGB colour and near-infrared reflectance in [0, 1]."""

  rgb: tuple[int, int, int]
  ir: float


@dataclasses.dataclass(frozen=True)
class Outfit:
  """One set of clothes; `clothes_id` is unique over all identities."""

  clothes_id: int
  upper: str
  sleeve: str
  upper_colour: str
  pattern: str
  pattern_colour: str
  lower: str
  lower_colour: str
  shoes: str
  shoes_colour: str
  upper_paint: Paint
  pattern_paint: Paint
  inner_paint: Paint
  lower_paint: Paint
  shoes_paint: Paint


@dataclasses.dataclass(frozen=True)
class Identity:
  """A person: body, head, accessories, bag and one to three outfits."""

  pid: int
  build: str
  width: float
  height: str
  stature: float
  skin: str
  hair_style: str
  hair_colour: str
  accessory: str
  accessory_colour: str
  bag: str
  bag_colour: str
  skin_paint: Paint
  hair_paint: Paint
  accessory_paint: Paint
  bag_paint: Paint
  outfits: tuple[Outfit, ...]


def _choice(rng: np.random.Generator, weights: dict) -> str:
  names = list(weights)
  p = np.array([w[0] if isinstance(w, tuple) else w for w in weights.values()], dtype=np.float64)
  return names[rng.choice(len(names), p=p / p.sum())]


def _colour(rng: np.random.Generator, allowed=None) -> str:
  allowed = allowed or tuple(COLOURS)
  return _choice(rng, {name: COLOURS[name][0] for name in allowed})


def _paint(rng: np.random.Generator, rgb, ir_range=(0.15, 0.9), jitter: int = 14) -> Paint:
  """A named colour with a small per-item shift and a dye-independent IR reflectance."""
  shifted = np.clip(np.asarray(rgb) + rng.integers(-jitter, jitter + 1, size=3), 0, 255)
  return Paint(tuple(int(v) for v in shifted), float(rng.uniform(*ir_range)))


def _garment_paint(rng: np.random.Generator, colour: str) -> Paint:
  return _paint(rng, COLOURS[colour][1])


def _outfit(rng: np.random.Generator, clothes_id: int) -> Outfit:
  upper = _choice(rng, UPPERS)
  sleeves = UPPERS[upper][1]
  upper_colour = _colour(rng)
  pattern = _choice(rng, PATTERNS) if upper not in ("coat",) else "plain"
  pattern_colour = _colour(rng, [c for c in COLOURS if c != upper_colour])
  lower = _choice(rng, LOWERS)
  lower_colour = _colour(rng, LOWERS[lower][1])
  shoes = _choice(rng, SHOES)
  shoes_colour = _colour(rng, SHOES[shoes][1])
  upper_paint = _garment_paint(rng, upper_colour)
  pattern_paint = _garment_paint(rng, pattern_colour)
  # Printed patterns share the fabric: their IR contrast is weak.
  pattern_paint = Paint(pattern_paint.rgb, float(np.clip(upper_paint.ir + rng.uniform(-0.15, 0.15), 0.05, 0.95)))
  return Outfit(
    clothes_id=clothes_id, upper=upper, sleeve=sleeves[rng.integers(len(sleeves))],
    upper_colour=upper_colour, pattern=pattern, pattern_colour=pattern_colour,
    lower=lower, lower_colour=lower_colour, shoes=shoes, shoes_colour=shoes_colour,
    upper_paint=upper_paint, pattern_paint=pattern_paint,
    inner_paint=_garment_paint(rng, INNER_COLOURS[rng.integers(len(INNER_COLOURS))]),
    lower_paint=_garment_paint(rng, lower_colour), shoes_paint=_garment_paint(rng, shoes_colour))


def _look(outfit: Outfit) -> tuple:
  return (outfit.upper, outfit.upper_colour, outfit.lower, outfit.lower_colour)


def sample_identity(rng: np.random.Generator, pid: int, first_clothes_id: int) -> Identity:
  """Draws one identity; its outfits get clothes ids from `first_clothes_id` on."""
  build, height = _choice(rng, BUILDS), _choice(rng, HEIGHTS)
  skin = list(SKIN_TONES)[rng.integers(len(SKIN_TONES))]
  hair_style = _choice(rng, HAIR_STYLES)
  hair_colour = _choice(rng, HAIR_COLOURS)
  accessory, bag = _choice(rng, ACCESSORIES), _choice(rng, BAGS)
  accessory_colour = _colour(rng, ("black", "white", "grey", "navy", "red", "blue", "beige", "brown"))
  bag_colour = _colour(rng, ("black", "grey", "navy", "brown", "red", "blue", "beige", "green"))
  counts = list(OUTFIT_COUNTS)
  num_outfits = counts[rng.choice(len(counts), p=list(OUTFIT_COUNTS.values()))]
  outfits = []
  while len(outfits) < num_outfits:  # An identity's outfits look different from each other.
    outfit = _outfit(rng, first_clothes_id + len(outfits))
    if all(_look(outfit) != _look(o) for o in outfits):
      outfits.append(outfit)
  _, hair_rgb, hair_ir = HAIR_COLOURS[hair_colour]
  return Identity(
    pid=pid, build=build, width=BUILDS[build][1] * rng.uniform(0.96, 1.04),
    height=height, stature=HEIGHTS[height][1] * rng.uniform(0.98, 1.02),
    skin=skin, hair_style=hair_style, hair_colour=hair_colour,
    accessory=accessory, accessory_colour=accessory_colour, bag=bag, bag_colour=bag_colour,
    skin_paint=_paint(rng, SKIN_TONES[skin], ir_range=(0.62, 0.74), jitter=8),
    hair_paint=Paint(_paint(rng, hair_rgb, jitter=8).rgb, hair_ir * rng.uniform(0.9, 1.1)),
    accessory_paint=_garment_paint(rng, accessory_colour),
    bag_paint=_garment_paint(rng, bag_colour), outfits=tuple(outfits))


def sample_identities(seed: int, first_pid: int, count: int, first_clothes_id: int) -> list[Identity]:
  """`count` identities with consecutive pids, deterministic in (seed, first_pid)."""
  identities, clothes_id = [], first_clothes_id
  for pid in range(first_pid, first_pid + count):
    identity = sample_identity(np.random.default_rng([seed, 1, pid]), pid, clothes_id)
    identities.append(identity)
    clothes_id += len(identity.outfits)
  return identities
