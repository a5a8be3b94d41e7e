"""Draws a pedestrian as a material map plus a shade map.

The material map says which material covers each pixel (skin, hair, upper
garment, ...); colour and infrared images are both rendered from it (see
render.py). The shade map holds part outlines, folds and seams (255 = fully
lit), so that overlapping parts of one material stay distinguishable.

Coordinates are body units: y runs from the top of the head (0) to the soles
(1), x from the body axis, positive to the image right. Side views face right.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

from data_pipelines.synthetic.identities import Identity, Outfit

(BACKGROUND, SKIN, HAIR, FACE, UPPER, PATTERN, TRIM, INNER, LOWER, STITCH, SHOES, SOLE, BAG,
 ACCESSORY, LENS) = range(15)
SCENE_BASE = 16  # Background scene materials are numbered from here on.
GARMENTS = (UPPER, PATTERN, TRIM, INNER, LOWER, STITCH, SHOES, SOLE)
VIEWS = ("front", "back", "side")
EDGE = 105  # Shade of part outlines.
FAR = 200  # Shade of limbs on the far side of the body.


@dataclasses.dataclass(frozen=True)
class Pose:
  """Walking pose: cycle phase (radians), stride in [0, 1], arm spread in [0, 1]."""

  phase: float
  stride: float
  arm_spread: float


class Painter:
  """Paints polygons in body units onto the material and shade layers at once."""

  def __init__(self, height: int, width: int, cx: float, top: float, scale: float):
    self.mat = Image.new("L", (width, height), BACKGROUND)
    self.shade = Image.new("L", (width, height), 255)
    self._dm, self._ds = ImageDraw.Draw(self.mat), ImageDraw.Draw(self.shade)
    self.cx, self.top, self.scale = cx, top, scale
    self.edge = max(1, round(scale * 0.0055))

  def _px(self, pts) -> list[tuple[float, float]]:
    return [(self.cx + x * self.scale, self.top + y * self.scale) for x, y in pts]

  def polygon(self, pts, mat: int, tone: int = 255, outline: bool = True) -> None:
    px = self._px(pts)
    self._dm.polygon(px, fill=mat)
    self._ds.polygon(px, fill=tone, outline=EDGE if outline else None, width=self.edge)

  def ellipse(self, c, rx: float, ry: float, mat: int, tone: int = 255, outline: bool = True) -> None:
    self.polygon(ellipse_points(c, rx, ry, -math.pi, math.pi, 28), mat, tone, outline)

  def capsule(self, p0, p1, r0: float, r1: float, mat: int, tone: int = 255) -> None:
    self.polygon(capsule_points(p0, p1, r0, r1), mat, tone)

  def line(self, pts, width: float, mat: int | None = None, tone: int = EDGE) -> None:
    """A stroke of `width` body units: a material (thin parts) or only a shade line (seams)."""
    px, w = self._px(pts), max(1, round(width * self.scale))
    if mat is not None:
      self._dm.line(px, fill=mat, width=w, joint="curve")
    self._ds.line(px, fill=tone, width=w, joint="curve")

  def shadow(self, c, rx: float, ry: float, tone: int) -> None:
    """Darkens the shade layer only (a cast shadow on the ground)."""
    self._ds.polygon(self._px(ellipse_points(c, rx, ry, -math.pi, math.pi, 28)), fill=tone)

  def arrays(self) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(self.mat), np.asarray(self.shade)


def ellipse_points(c, rx: float, ry: float, a0: float, a1: float, n: int) -> list[tuple[float, float]]:
  return [(c[0] + rx * math.cos(a), c[1] + ry * math.sin(a)) for a in np.linspace(a0, a1, n)]


def capsule_points(p0, p1, r0: float, r1: float, n: int = 7) -> list[tuple[float, float]]:
  """Outline of a tapered limb: round caps of radius r0 at p0 and r1 at p1."""
  angle = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
  cap1 = ellipse_points(p1, r1, r1, angle - math.pi / 2, angle + math.pi / 2, n)
  cap0 = ellipse_points(p0, r0, r0, angle + math.pi / 2, angle + 3 * math.pi / 2, n)
  return cap1 + cap0


def _along(p0, p1, t: float) -> tuple[float, float]:
  return (p0[0] + (p1[0] - p0[0]) * t, p0[1] + (p1[1] - p0[1]) * t)


@dataclasses.dataclass(frozen=True)
class _Limb:
  root: tuple[float, float]
  joint: tuple[float, float]
  end: tuple[float, float]
  sign: float  # -1 image left, +1 image right (front/back); 0 far, 1 near (side).


class _Person:
  """One drawing of an identity in an outfit, view and pose."""

  def __init__(self, painter: Painter, identity: Identity, outfit: Outfit, view: str, pose: Pose,
               garments_only: bool):
    self.p, self.who, self.fit, self.view, self.pose = painter, identity, outfit, view, pose
    self.garments_only = garments_only
    self.w = identity.width
    self.hip = 0.5 + 0.3 * (identity.stature - 1.0)
    self.knee = self.hip + (0.955 - self.hip) * 0.49
    self.head = (0.012 if view == "side" else 0.0, 0.068)
    self.head_r = (0.05 * (0.6 + 0.4 * self.w) * (1.1 if view == "side" else 1.0), 0.066)
    self.shoulder_w = 0.1 * self.w if view != "side" else 0.05 * self.w
    self.legs, self.arms = self._legs(), self._arms()

  # -- skeleton ---------------------------------------------------------------

  def _legs(self) -> list[_Limb]:
    st, ph, w = self.pose.stride, self.pose.phase, self.w
    legs = []
    if self.view == "side":
      thigh, calf = self.knee - self.hip, 0.955 - self.knee
      for i in range(2):
        swing = math.sin(ph + i * math.pi)
        a = 0.42 * st * swing
        bend = 0.55 * st * max(0.0, -math.sin(ph + i * math.pi + 0.6))
        knee = (thigh * math.sin(a), self.hip + thigh * math.cos(a))
        ankle = (knee[0] + calf * math.sin(a - bend), knee[1] + calf * math.cos(a - bend))
        legs.append(_Limb((0.0, self.hip), knee, ankle, float(i)))
      drop = 0.955 - max(l.end[1] for l in legs)
      return [_Limb(l.root, (l.joint[0], l.joint[1] + drop), (l.end[0], l.end[1] + drop), l.sign)
              for l in legs]
    for i, sign in enumerate((-1.0, 1.0)):
      lift = max(0.0, math.sin(ph + i * math.pi)) * st
      legs.append(_Limb((sign * 0.047 * w, self.hip), (sign * 0.05 * w, self.knee - 0.012 * lift),
                        (sign * (0.046 * w + 0.012 * st), 0.955 - 0.03 * lift), sign))
    return legs

  def _arms(self) -> list[_Limb]:
    st, ph, spread = self.pose.stride, self.pose.phase, self.pose.arm_spread
    upper, fore = 0.15, 0.135
    arms = []
    if self.view == "side":
      for i in range(2):
        a = -0.5 * st * math.sin(ph + i * math.pi)
        bend = 0.3 + 0.25 * st
        shoulder = (0.0, 0.205)
        elbow = (shoulder[0] + upper * math.sin(a), shoulder[1] + upper * math.cos(a))
        wrist = (elbow[0] + fore * math.sin(a + bend), elbow[1] + fore * math.cos(a + bend))
        arms.append(_Limb(shoulder, elbow, wrist, float(i)))
      return arms
    sw = self.shoulder_w
    for i, sign in enumerate((-1.0, 1.0)):
      swing = abs(math.sin(ph + i * math.pi)) * st
      ex, wx = sw + 0.008 + 0.09 * spread, sw + 0.016 + 0.22 * spread
      elbow_y = 0.205 + upper * math.cos(0.6 * spread)
      arms.append(_Limb((sign * (sw - 0.016), 0.205), (sign * ex, elbow_y - 0.01 * swing),
                        (sign * wx, elbow_y + fore * math.cos(1.1 * spread) - 0.025 * swing), sign))
    return arms

  # -- parts ----------------------------------------------------------------

  def _tone(self, limb: _Limb) -> int:
    return FAR if self.view == "side" and limb.sign == 0 else 255

  def _leg(self, leg: _Limb) -> None:
    w, fit, tone = self.w, self.fit, self._tone(leg)
    r_hip, r_knee, r_ankle = 0.05 * w, 0.036 * w, 0.024 * w
    covered = fit.lower in ("trousers", "jeans")
    self.p.capsule(leg.root, leg.joint, r_hip, r_knee, LOWER if covered else SKIN, tone)
    self.p.capsule(leg.joint, leg.end, r_knee, r_ankle, LOWER if covered else SKIN, tone)
    if fit.lower == "shorts":
      self.p.capsule(leg.root, _along(leg.root, leg.joint, 0.55), r_hip + 0.006, 0.046 * w, LOWER, tone)
    if fit.lower == "jeans":
      side = 1 if self.view == "side" else leg.sign
      self.p.line([(leg.root[0] + side * 0.035 * w, leg.root[1] + 0.02),
                   (leg.joint[0] + side * 0.03 * w, leg.joint[1]), (leg.end[0] + side * 0.02 * w, leg.end[1] - 0.01)],
                  0.0035, STITCH)
    if covered:  # A fold at the knee.
      self.p.line([(leg.joint[0] - 0.02 * w, leg.joint[1] + 0.01), (leg.joint[0] + 0.015 * w, leg.joint[1] + 0.02)],
                  0.004, tone=int(EDGE * 1.5))
    self._shoe(leg, tone)

  def _shoe(self, leg: _Limb, tone: int) -> None:
    x, y = leg.end
    kind, w = self.fit.shoes, self.w
    if self.view == "side":
      toe = 0.07 if kind != "leather shoes" else 0.078
      self.p.polygon([(x - 0.028, y - (0.05 if kind == "boots" else 0.012)), (x + 0.01, y - 0.012),
                      (x + toe - 0.015, y + 0.012), (x + toe, y + 0.03), (x + toe, y + 0.045),
                      (x - 0.03, y + 0.045), (x - 0.032, y + 0.01)], SHOES, tone)
      if kind == "sneakers":
        self.p.polygon([(x - 0.032, y + 0.034), (x + toe, y + 0.034), (x + toe, y + 0.045), (x - 0.03, y + 0.045)],
                       SOLE, tone)
      return
    top = y - (0.055 if kind == "boots" else 0.005)
    half = 0.03 * w if kind != "leather shoes" else 0.026 * w
    self.p.polygon([(x - half, top), (x + half, top), (x + half * 1.15, y + 0.03), (x + half, y + 0.045),
                    (x - half, y + 0.045), (x - half * 1.15, y + 0.03)], SHOES, tone)
    if kind == "sneakers":
      self.p.polygon([(x - half * 1.15, y + 0.033), (x + half * 1.15, y + 0.033), (x + half, y + 0.045),
                      (x - half, y + 0.045)], SOLE, tone)

  def _pelvis(self) -> None:
    fit, w, h = self.fit, self.w, self.hip
    if fit.lower in ("skirt", "long skirt"):
      hem = self.knee + 0.01 if fit.lower == "skirt" else 0.86
      flare = 0.13 if fit.lower == "skirt" else 0.15
      if self.view == "side":
        self.p.polygon([(-0.06 * w, h - 0.05), (0.058 * w, h - 0.05), (0.1 * w + 0.03, hem),
                        (-0.09 * w - 0.03, hem)], LOWER)
      else:
        self.p.polygon([(-0.085 * w, h - 0.05), (0.085 * w, h - 0.05), (flare * w, hem), (-flare * w, hem)], LOWER)
        self.p.line([(0.0, h), (0.0, hem)], 0.003, tone=int(EDGE * 1.6))
      return
    if self.view == "side":
      self.p.polygon([(-0.06 * w, h - 0.05), (0.058 * w, h - 0.05), (0.055 * w, h + 0.04), (-0.058 * w, h + 0.05)],
                     LOWER)
    else:
      self.p.polygon([(-0.088 * w, h - 0.05), (0.088 * w, h - 0.05), (0.094 * w, h + 0.03), (0.0, h + 0.045),
                      (-0.094 * w, h + 0.03)], LOWER)
      self.p.line([(0.0, h - 0.03), (0.0, h + 0.04)], 0.003)

  def _torso_outline(self, hem: float) -> list[tuple[float, float]]:
    w, h = self.w, self.hip
    belly = 1.0 + 0.6 * max(0.0, w - 1.0)
    if self.view == "side":
      return [(-0.048 * w, 0.172), (0.03 * w, 0.172), (0.062 * w, 0.23), (0.058 * w, 0.32),
              (0.056 * w * belly, 0.42), (0.06 * w, hem), (-0.06 * w, hem), (-0.056 * w, 0.4),
              (-0.064 * w, 0.27), (-0.06 * w, 0.2)]
    sw = self.shoulder_w
    return [(-sw + 0.02, 0.172), (sw - 0.02, 0.172), (sw, 0.196), (0.093 * w, 0.27),
            (0.082 * w * belly, 0.4), (0.092 * w, min(hem, h + 0.01)), (0.094 * w, hem),
            (-0.094 * w, hem), (-0.092 * w, min(hem, h + 0.01)), (-0.082 * w * belly, 0.4),
            (-0.093 * w, 0.27), (-sw, 0.196)]

  def _torso(self) -> None:
    fit, w, h, p = self.fit, self.w, self.hip, self.p
    front, side = self.view == "front", self.view == "side"
    hem = {"coat": self.knee + 0.04, "jacket": h + 0.035, "hoodie": h + 0.03, "sweater": h + 0.02}.get(
      fit.upper, h - 0.005)
    if fit.upper == "tank top":
      p.polygon(self._torso_outline(hem), SKIN)
      top = [(x * (0.78 if y < 0.2 else 1.0), max(y, 0.2)) for x, y in self._torso_outline(hem)]
      p.polygon(top, UPPER)
    elif fit.upper == "coat":
      flare = 0.125 * w if not side else 0.085 * w
      outline = self._torso_outline(h)
      half = len(outline) // 2
      coat = outline[:half] + [(flare, hem), (-flare - (0.02 if side else 0.0), hem)] + outline[half + 2:]
      p.polygon(coat, UPPER)
      p.polygon([(x, 0.395) for x in (-0.09 * w, 0.09 * w)] + [(0.09 * w, 0.415), (-0.09 * w, 0.415)], TRIM)
      if front:
        p.line([(0.0, 0.415), (0.0, hem)], 0.004)
        for y in (0.25, 0.31, 0.36):
          p.ellipse((0.025 * w, y), 0.006, 0.006, TRIM)
    else:
      p.polygon(self._torso_outline(hem), UPPER)
    if fit.upper == "sweater":
      p.polygon([(-0.094 * w, hem - 0.022), (0.094 * w, hem - 0.022), (0.094 * w, hem), (-0.094 * w, hem)]
                if not side else [(-0.06 * w, hem - 0.022), (0.06 * w, hem - 0.022), (0.06 * w, hem),
                                  (-0.06 * w, hem)], TRIM)
    if front and fit.upper == "jacket":
      p.polygon([(-0.028 * w, 0.176), (0.028 * w, 0.176), (0.034 * w, hem), (-0.034 * w, hem)], INNER)
      p.polygon([(-0.028 * w, 0.176), (-0.05 * w, 0.176), (-0.02 * w, 0.26)], TRIM)
      p.polygon([(0.028 * w, 0.176), (0.05 * w, 0.176), (0.02 * w, 0.26)], TRIM)
    if side and fit.upper == "jacket":
      p.polygon([(0.045 * w, 0.18), (0.062 * w, 0.23), (0.058 * w, hem), (0.048 * w, hem)], INNER)
    if front and fit.upper == "shirt":
      p.polygon([(-0.035, 0.168), (0.0, 0.2), (-0.008, 0.215), (-0.045, 0.186)], TRIM)
      p.polygon([(0.035, 0.168), (0.0, 0.2), (0.008, 0.215), (0.045, 0.186)], TRIM)
      for y in np.arange(0.24, hem - 0.02, 0.045):
        p.ellipse((0.0, float(y)), 0.0045, 0.0045, TRIM)
    if front and fit.upper in ("t-shirt", "sweater"):
      p.line(ellipse_points((0.0, 0.168), 0.03, 0.02, 0.15, math.pi - 0.15, 9), 0.006, TRIM)
    if fit.upper == "hoodie":
      if self.view == "back":
        p.polygon([(-0.06, 0.17), (0.06, 0.17), (0.045, 0.27), (0.0, 0.29), (-0.045, 0.27)], UPPER)
      elif front:
        p.polygon([(-0.055 * w, h - 0.09), (0.055 * w, h - 0.09), (0.07 * w, h - 0.01), (-0.07 * w, h - 0.01)],
                  UPPER)
        p.line([(-0.015, 0.19), (-0.017, 0.26)], 0.005, TRIM)
        p.line([(0.015, 0.19), (0.017, 0.26)], 0.005, TRIM)
    if front and fit.pattern == "logo" and fit.upper not in ("jacket", "coat"):
      p.polygon([(0.0, 0.235), (0.03, 0.27), (0.0, 0.305), (-0.03, 0.27)], PATTERN)
    # Folds under the chest and at the waist.
    p.line([(-0.04 * w, 0.35), (-0.01, 0.37)], 0.004, tone=int(EDGE * 1.6))

  def _arm(self, arm: _Limb) -> None:
    w, fit, tone, p = self.w, self.fit, self._tone(arm), self.p
    r_shoulder, r_elbow, r_wrist = 0.036 * w, 0.029 * w, 0.022 * w
    sleeve = fit.sleeve
    p.capsule(arm.root, arm.joint, r_shoulder, r_elbow, UPPER if sleeve != "none" else SKIN, tone)
    p.capsule(arm.joint, arm.end, r_elbow, r_wrist, UPPER if sleeve == "long" else SKIN, tone)
    if sleeve == "short":
      p.capsule(arm.root, _along(arm.root, arm.joint, 0.62), r_shoulder + 0.004, r_elbow + 0.007, UPPER, tone)
    elif sleeve == "long" and fit.upper in ("sweater", "hoodie"):
      p.capsule(_along(arm.joint, arm.end, 0.86), arm.end, r_wrist + 0.004, r_wrist + 0.004, TRIM, tone)
    hand = _along(arm.joint, arm.end, 1.17)
    p.ellipse(hand, 0.02 * w, 0.026, SKIN, tone)

  def _neck(self) -> None:
    x = self.head[0] - (0.008 if self.view == "side" else 0.0)
    self.p.capsule((x, 0.1), (x * 0.5, 0.185), 0.024, 0.026, SKIN)
    if self.fit.upper == "hoodie" and self.view != "back":
      self.p.polygon(ellipse_points((x * 0.5, 0.175), 0.058, 0.03, 0.0, math.pi, 11)
                     + ellipse_points((x * 0.5, 0.165), 0.052, 0.025, math.pi, 2 * math.pi, 11), UPPER)

  def _head(self) -> None:
    (cx, cy), (rx, ry), p = self.head, self.head_r, self.p
    if self.view == "side":
      p.polygon(ellipse_points((cx, cy), rx, ry, -math.pi, 0.25, 22)
                + [(cx + rx + 0.013, cy + 0.015), (cx + rx - 0.003, cy + 0.03)]
                + ellipse_points((cx, cy), rx, ry, 0.6, math.pi, 10), SKIN)
      p.ellipse((cx - 0.12 * rx, cy + 0.006), 0.011, 0.016, SKIN)
    else:
      p.ellipse((cx, cy), rx, ry, SKIN)
      p.ellipse((cx - rx, cy + 0.008), 0.008, 0.014, SKIN)
      p.ellipse((cx + rx, cy + 0.008), 0.008, 0.014, SKIN)
      p.ellipse((cx, cy), rx, ry, SKIN, outline=False)
    if self.view == "front":
      for s in (-1, 1):
        p.ellipse((cx + s * 0.36 * rx, cy - 0.002), 0.0075, 0.0055, FACE, outline=False)
        p.line([(cx + s * 0.2 * rx, cy - 0.016), (cx + s * 0.55 * rx, cy - 0.017)], 0.004, HAIR)
      p.line([(cx, cy + 0.004), (cx + 0.004, cy + 0.024)], 0.0035)
      p.line([(cx - 0.012, cy + 0.038), (cx + 0.012, cy + 0.038)], 0.0045, FACE)
    elif self.view == "side":
      p.ellipse((cx + 0.62 * rx, cy - 0.002), 0.0055, 0.005, FACE, outline=False)
      p.line([(cx + 0.5 * rx, cy - 0.016), (cx + 0.82 * rx, cy - 0.016)], 0.004, HAIR)
      p.line([(cx + 0.75 * rx, cy + 0.04), (cx + 0.93 * rx, cy + 0.038)], 0.004, FACE)

  def _hair_back(self) -> None:
    """Hair that hangs behind the head and shoulders (drawn before them)."""
    (cx, cy), (rx, ry), p = self.head, self.head_r, self.p
    style = self.who.hair_style
    if style == "long" and self.view != "back":
      if self.view == "side":
        p.polygon([(cx - 0.4 * rx, cy - 0.5 * ry), (cx - 1.15 * rx, cy), (cx - 1.0 * rx, 0.27),
                   (cx - 0.1 * rx, 0.25), (cx + 0.1 * rx, cy)], HAIR)
      else:
        p.polygon([(cx - 1.05 * rx, cy - 0.4 * ry), (cx - 1.3 * rx, 0.26), (cx + 1.3 * rx, 0.26),
                   (cx + 1.05 * rx, cy - 0.4 * ry)], HAIR)
    if style == "bun" and self.view == "front":
      p.ellipse((cx, cy - 1.05 * ry), 0.028, 0.024, HAIR)

  def _hair(self) -> None:
    (cx, cy), (rx, ry), p = self.head, self.head_r, self.p
    style = self.who.hair_style
    if style == "bald":
      return
    grow = {"buzz": 1.03, "curly": 1.22}.get(style, 1.09)
    if self.view == "back":
      outer = ellipse_points((cx, cy - 0.004), rx * grow, ry * grow, 0.3, -math.pi - 0.3, 24)
      if style == "curly":
        outer = _curls(outer, (cx, cy))
      bottom = 0.26 if style == "long" else cy + 0.75 * ry
      side = 1.3 if style == "long" else 0.85
      p.polygon(outer + [(cx - side * rx, bottom), (cx + side * rx, bottom)], HAIR)
      if style == "ponytail":
        p.capsule((cx, cy + 0.4 * ry), (cx, 0.23), 0.02, 0.012, HAIR)
      if style == "bun":
        p.ellipse((cx, cy - 0.35 * ry), 0.03, 0.027, HAIR)
      return
    if self.view == "side":
      outer = ellipse_points((cx - 0.004, cy - 0.004), rx * grow, ry * grow, -0.6, -math.pi - 1.0, 24)
      if style == "curly":
        outer = _curls(outer, (cx, cy))
      p.polygon(outer + [(cx - 0.5 * rx, cy + 0.65 * ry), (cx - 0.25 * rx, cy + 0.05 * ry),
                         (cx + 0.25 * rx, cy - 0.3 * ry), (cx + 0.7 * rx, cy - 0.55 * ry)], HAIR)
      if style == "ponytail":
        p.capsule((cx - 0.9 * rx, cy - 0.1 * ry), (cx - 1.4 * rx, 0.2), 0.018, 0.011, HAIR)
      if style == "bun":
        p.ellipse((cx - 0.85 * rx, cy - 0.75 * ry), 0.028, 0.026, HAIR)
      return
    outer = ellipse_points((cx, cy - 0.004), rx * grow, ry * grow, 0.15, -math.pi - 0.15, 24)
    if style == "curly":
      outer = _curls(outer, (cx, cy))
    line = 0.62 if style != "buzz" else 0.75
    p.polygon(outer + [(cx - 0.92 * rx, cy - 0.05 * ry), (cx - 0.55 * rx, cy - line * ry),
                       (cx + 0.1 * rx, cy - (line - 0.1) * ry), (cx + 0.6 * rx, cy - line * ry),
                       (cx + 0.92 * rx, cy - 0.05 * ry)], HAIR)

  def _accessory(self) -> None:
    (cx, cy), (rx, ry), p = self.head, self.head_r, self.p
    kind, view = self.who.accessory, self.view
    if kind in ("glasses", "sunglasses") and view != "back":
      lens = LENS if kind == "sunglasses" else None
      eyes = [cx + s * 0.36 * rx for s in (-1, 1)] if view == "front" else [cx + 0.62 * rx]
      for ex in eyes:
        if lens is None:
          p.line(ellipse_points((ex, cy), 0.0155, 0.012, -math.pi, math.pi, 16), 0.0035, ACCESSORY)
        else:
          p.ellipse((ex, cy), 0.0165, 0.0125, LENS)
      if view == "front":
        p.line([(eyes[0] + 0.015, cy - 0.002), (eyes[1] - 0.015, cy - 0.002)], 0.003, ACCESSORY)
      else:
        p.line([(eyes[0] - 0.015, cy - 0.002), (cx - 0.1 * rx, cy + 0.002)], 0.003, ACCESSORY)
    elif kind == "cap":
      p.polygon(ellipse_points((cx, cy - 0.006), rx * 1.1, ry * 1.08, 0.0, -math.pi, 16)
                + [(cx - 1.1 * rx, cy - 0.3 * ry), (cx + 1.1 * rx, cy - 0.3 * ry)], ACCESSORY)
      if view == "front":
        p.ellipse((cx, cy - 0.3 * ry), 1.1 * rx, 0.014, ACCESSORY)
      elif view == "side":
        p.polygon([(cx + 0.5 * rx, cy - 0.45 * ry), (cx + 1.75 * rx, cy - 0.32 * ry),
                   (cx + 1.7 * rx, cy - 0.22 * ry), (cx + 0.5 * rx, cy - 0.28 * ry)], ACCESSORY)
    elif kind == "hat":
      p.polygon([(cx - 0.85 * rx, cy - 0.45 * ry), (cx - 0.8 * rx, cy - 1.45 * ry),
                 (cx + 0.8 * rx, cy - 1.45 * ry), (cx + 0.85 * rx, cy - 0.45 * ry)], ACCESSORY)
      p.ellipse((cx, cy - 0.5 * ry), 1.75 * rx, 0.016, ACCESSORY)
      p.line([(cx - 0.84 * rx, cy - 0.62 * ry), (cx + 0.84 * rx, cy - 0.62 * ry)], 0.01, TRIM)
    elif kind == "mask" and view != "back":
      if view == "front":
        p.polygon(ellipse_points((cx, cy + 0.2 * ry), 0.78 * rx, 0.72 * ry, 0.0, math.pi, 12)
                  + [(cx - 0.8 * rx, cy + 0.15 * ry), (cx + 0.8 * rx, cy + 0.15 * ry)], ACCESSORY)
        for s in (-1, 1):
          p.line([(cx + s * 0.78 * rx, cy + 0.2 * ry), (cx + s * rx, cy + 0.05 * ry)], 0.003, ACCESSORY)
      else:
        p.polygon([(cx + 0.3 * rx, cy + 0.15 * ry), (cx + 1.08 * rx, cy + 0.15 * ry),
                   (cx + 0.98 * rx, cy + 0.8 * ry), (cx + 0.45 * rx, cy + 0.85 * ry)], ACCESSORY)
        p.line([(cx + 0.3 * rx, cy + 0.2 * ry), (cx - 0.12 * rx, cy + 0.05 * ry)], 0.003, ACCESSORY)
    elif kind == "headphones":
      p.line(ellipse_points((cx, cy), rx * 1.15, ry * 1.12, -math.pi + 0.15, -0.15, 14), 0.011, ACCESSORY)
      ears = [cx - rx, cx + rx] if view != "side" else [cx - 0.12 * rx]
      for ex in ears:
        p.ellipse((ex, cy + 0.006), 0.016, 0.022, ACCESSORY)

  def _bag_behind(self) -> None:
    """Bag parts hidden by the body: drawn before the torso."""
    if self.who.bag == "handbag" and self.view == "side":
      self._handbag(self.arms[0], FAR)

  def _bag(self) -> None:
    bag, view, w, p = self.who.bag, self.view, self.w, self.p
    sw = self.shoulder_w
    if bag == "backpack":
      if view == "back":
        p.polygon([(-0.075 * w, 0.2), (0.075 * w, 0.2), (0.082 * w, 0.44), (0.07 * w, 0.46),
                   (-0.07 * w, 0.46), (-0.082 * w, 0.44)], BAG)
        p.polygon([(-0.055 * w, 0.36), (0.055 * w, 0.36), (0.055 * w, 0.44), (-0.055 * w, 0.44)], BAG)
      elif view == "front":
        for s in (-1, 1):
          p.polygon([(s * (sw - 0.05), 0.175), (s * (sw - 0.02), 0.175), (s * (sw - 0.025), 0.38),
                     (s * (sw - 0.045), 0.38)], BAG)
      else:
        p.polygon([(-0.06 * w, 0.2), (-0.06 * w - 0.065, 0.215), (-0.06 * w - 0.075, 0.44),
                   (-0.055 * w, 0.46)], BAG)
        p.polygon([(-0.02, 0.18), (0.0, 0.18), (0.035 * w, 0.37), (0.015 * w, 0.37)], BAG)
    elif bag == "shoulder bag":
      side = 1.0 if view == "front" else -1.0
      if view == "side":
        p.line([(-0.015, 0.18), (0.045 * w, 0.34)], 0.011, BAG)
        p.polygon([(-0.05 * w, self.hip - 0.06), (0.05 * w, self.hip - 0.06), (0.05 * w, self.hip + 0.04),
                   (-0.05 * w, self.hip + 0.04)], BAG)
        return
      p.line([(-side * (sw - 0.03), 0.178), (side * 0.1 * w, self.hip - 0.05)], 0.011, BAG)
      x0 = side * 0.085 * w
      p.polygon([(x0, self.hip - 0.07), (x0 + side * 0.09, self.hip - 0.07), (x0 + side * 0.09, self.hip + 0.02),
                 (x0, self.hip + 0.02)], BAG)
    elif bag == "handbag" and view != "side":
      self._handbag(self.arms[0 if view == "front" else 1], 255)

  def _handbag(self, arm: _Limb, tone: int) -> None:
    x, y = _along(arm.joint, arm.end, 1.2)
    self.p.line(ellipse_points((x, y + 0.02), 0.025, 0.025, -math.pi, 0.0, 8), 0.005, BAG, tone)
    self.p.polygon([(x - 0.045, y + 0.025), (x + 0.045, y + 0.025), (x + 0.05, y + 0.1), (x - 0.05, y + 0.1)],
                   BAG, tone)

  # -- assembly -------------------------------------------------------------

  def draw(self) -> None:
    if not self.garments_only:
      self._hair_back()
    if self.view == "side":
      self._arm(self.arms[0])
      if not self.garments_only:
        self._bag_behind()
    for leg in self.legs:
      self._leg(leg)
    self._pelvis()
    if not self.garments_only:
      self._neck()
    self._torso()
    if not self.garments_only and self.view != "front":
      self._bag()
    for arm in (self.arms[1:] if self.view == "side" else self.arms):
      self._arm(arm)
    if self.garments_only:
      return
    if self.view == "front":
      self._bag()
    self._head()
    self._hair()
    self._accessory()


def _curls(points, centre) -> list[tuple[float, float]]:
  """Bumpy outline for curly hair."""
  out = []
  for i, (x, y) in enumerate(points):
    f = 1.0 + 0.07 * math.cos(i * 2.1)
    out.append((centre[0] + (x - centre[0]) * f, centre[1] + (y - centre[1]) * f))
  return out


def _apply_pattern(mat: np.ndarray, outfit: Outfit, top: float, cx: float, scale: float) -> np.ndarray:
  if outfit.pattern not in ("striped", "checked", "dotted"):
    return mat
  ys, xs = np.mgrid[0:mat.shape[0], 0:mat.shape[1]].astype(np.float32)
  ys, xs = (ys - top) / scale, (xs - cx) / scale
  if outfit.pattern == "striped":
    on = np.floor(ys / 0.028) % 2 == 1
  elif outfit.pattern == "checked":
    on = ((ys % 0.045) < 0.012) | ((xs % 0.045) < 0.012)
  else:
    on = (xs % 0.032 - 0.016) ** 2 + (ys % 0.032 - 0.016) ** 2 < 0.0055 ** 2
  return np.where(on & (mat == UPPER), PATTERN, mat).astype(np.uint8)


def draw_person(identity: Identity, outfit: Outfit, view: str, pose: Pose, size: tuple[int, int],
                box: tuple[float, float, float], garments_only: bool = False,
                shadow: int = 255) -> tuple[np.ndarray, np.ndarray]:
  """Material and shade maps (uint8, `size`) of the person in `box` = (centre x, top y, height) pixels.

  `garments_only` draws the clothes without the body (a clothes template);
  `shadow` < 255 casts a ground shadow of that shade under the feet.
  """
  cx, top, scale = box
  painter = Painter(size[0], size[1], cx, top, scale)
  if shadow < 255:
    painter.shadow((0.0, 0.995), 0.2 * identity.width, 0.022, shadow)
  _Person(painter, identity, outfit, view, pose, garments_only).draw()
  mat, shade = painter.arrays()
  mat = _apply_pattern(mat, outfit, top, cx, scale)
  if garments_only:
    shade = np.where(np.isin(mat, GARMENTS), shade, 255).astype(np.uint8)
    mat = np.where(np.isin(mat, GARMENTS), mat, BACKGROUND).astype(np.uint8)
  return mat, shade
