"""Contact sheet of the synthetic set: two identities across cameras, modalities and outfits.

    python -m data_pipelines.synthetic.contact_sheet docs/contact_sheet.png
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from data_pipelines import sketch
from data_pipelines.synthetic import captions, identities, render
from data_pipelines.synthetic.cameras import CAMERAS

_THUMB = (192, 96)
_LABEL_WIDTH, _HEADER, _CAPTION = 136, 22, 34
_LOW_RESOLUTION = 4


def _row(who: identities.Identity, outfit: identities.Outfit, seed: int) -> tuple[list[np.ndarray], str]:
  """One outfit: a shot per camera, a sketch and a low-resolution copy of camera 0's, the template."""
  shots = []
  for camera in CAMERAS:
    rng = np.random.default_rng([seed, 9, who.pid, outfit.clothes_id, camera.camid])
    image, mask, view = render.photo(who, outfit, camera, seed, rng)
    shots.append(image)
    if camera.camid == 0:
      text = captions.caption(who, outfit, view, rng)
      drawn, low = sketch.sketch(image, mask), render.low_resolution(image, _LOW_RESOLUTION)
  return shots + [drawn, low, render.template(who, outfit)], text


def contact_sheet(seed: int = 0) -> Image.Image:
  """The sheet of the first two identities of `seed` that own two or more outfits."""
  people = [p for p in identities.sample_identities(seed, 0, 50, 0) if len(p.outfits) > 1]
  people = [people[0], next(p for p in people if p.build != people[0].build and p.hair_style != people[0].hair_style)]
  headers = [f"{'IR ' if c.modality == 'ir' else ''}cam {c.camid}" for c in CAMERAS] + [
    "sketch (cam 0)", f"low-res x{_LOW_RESOLUTION}", "template"]
  (th, tw), rows = _THUMB, [(who, o, outfit) for who in people for o, outfit in enumerate(who.outfits[:2])]
  sheet = Image.new("RGB", (_LABEL_WIDTH + tw * len(headers), _HEADER + len(rows) * (th + _CAPTION)), "white")
  draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=12)
  for k, header in enumerate(headers):
    draw.text((_LABEL_WIDTH + k * tw + 4, 5), header, fill="black", font=font)
  for r, (who, o, outfit) in enumerate(rows):
    top = _HEADER + r * (th + _CAPTION)
    images, text = _row(who, outfit, seed)
    for k, image in enumerate(images):
      sheet.paste(Image.fromarray(image).resize((tw, th), Image.BILINEAR), (_LABEL_WIDTH + k * tw, top))
    label = (f"identity {'AB'[people.index(who)]}\noutfit {o + 1}\n\n{who.build}, {who.height}\n"
             f"{who.hair_style} {who.hair_colour} hair\n{who.accessory}, {who.bag}\n\n{outfit.upper}\n{outfit.lower}")
    draw.multiline_text((6, top + 4), label, fill="black", font=font, spacing=2)
    draw.multiline_text((_LABEL_WIDTH + 4, top + th + 2), textwrap.fill(f"caption: {text}", 190), fill=(60, 60, 60),
                        font=font, spacing=2)
  return sheet


def main(path: str) -> None:
  contact_sheet().quantize(192, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "docs/contact_sheet.png")
