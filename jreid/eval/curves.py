"""Learning curves: each task's mAP over the training steps it was evaluated at, as a PNG."""

from __future__ import annotations

from typing import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

SIZE = (960, 540)
MARGIN = (70, 30, 230, 60)  # left, top, right, bottom: room for the axes' labels and the legend
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
MEAN_COLOUR = (0, 0, 0)
GRID = (225, 225, 225)


def save_curves(path: str, steps: Sequence[int], curves: Mapping[str, Sequence[float]], mean: Sequence[float],
                title: str) -> None:
  """Writes `path`: one line per curve (values in [0, 1], shown in %) and a thicker black one for `mean`."""
  image = Image.new("RGB", SIZE, (255, 255, 255))
  draw = ImageDraw.Draw(image)
  font = ImageFont.load_default(size=14)
  left, top = MARGIN[0], MARGIN[1]
  right, bottom = SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
  top_value = max([0.05, *mean, *(v for values in curves.values() for v in values)])
  top_value = 0.05 * -(-top_value // 0.05)  # up to a whole 5 %
  first, last = min(steps), max(steps)

  def point(step: int, value: float) -> tuple[float, float]:
    x = left + (right - left) * ((step - first) / (last - first) if last > first else 0.5)
    return x, bottom - (bottom - top) * value / top_value

  for tick in range(int(round(top_value / 0.05)) + 1):
    y = point(first, 0.05 * tick)[1]
    draw.line([(left, y), (right, y)], fill=GRID)
    draw.text((left - 8, y), f"{5 * tick}", fill=(0, 0, 0), font=font, anchor="rm")
  for step in steps:
    x = point(step, 0.0)[0]
    draw.line([(x, bottom), (x, bottom + 4)], fill=(0, 0, 0))
    draw.text((x, bottom + 8), str(step), fill=(0, 0, 0), font=font, anchor="mt")
  draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
  draw.text(((left + right) / 2, SIZE[1] - 18), "training step", fill=(0, 0, 0), font=font, anchor="mm")
  draw.text((12, (top + bottom) / 2), "mAP %", fill=(0, 0, 0), font=font, anchor="lm")
  draw.text(((left + right) / 2, 12), title, fill=(0, 0, 0), font=font, anchor="mm")
  lines = [(name, values, COLOURS[i % len(COLOURS)], 2) for i, (name, values) in enumerate(curves.items())]
  for row, (name, values, colour, width) in enumerate(lines + [("mean", mean, MEAN_COLOUR, 4)]):
    points = [point(s, v) for s, v in zip(steps, values)]
    if len(points) > 1:
      draw.line(points, fill=colour, width=width)
    for x, y in points:
      draw.ellipse([x - width, y - width, x + width, y + width], fill=colour)
    y = top + 10 + 18 * row
    draw.line([(right + 16, y), (right + 40, y)], fill=colour, width=width)
    draw.text((right + 48, y), f"{name} {100 * values[-1]:.1f}", fill=(0, 0, 0), font=font, anchor="lm")
  image.save(path)
