"""Ranked-result pictures: one row per query, then its top-k gallery items."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from data_pipelines.records import EvalTask, Record

MATCH_COLOUR = (0, 180, 0)
NON_MATCH_COLOUR = (220, 0, 0)
QUERY_COLOUR = (128, 128, 128)
BACKGROUND = (255, 255, 255)
BORDER = 4  # pixels around each thumbnail
GAP = 4  # pixels between tiles and rows
QUERY_GAP = 16  # pixels between the query and its ranked list


def _query_parts(record: Record, query_kind: str) -> list[tuple[str, str]]:
  """What the query tile shows: ('image', path) and ('text', words) parts."""
  caption = record.captions[0] if record.captions else ""
  parts = {
      "image": [("image", record.path)],
      "sketch": [("image", record.path)],
      "text": [("text", caption)],
      "text+sketch": [("image", record.path), ("text", caption)],
      "image+instruction": [("image", record.path),
                            ("text", record.instruction)],
      "image+template": [("image", record.path), ("image", record.template)],
  }
  if query_kind not in parts:
    raise ValueError(f"Unknown query kind {query_kind!r}; expected one of "
                     f"{tuple(parts)}.")
  return parts[query_kind]


def _part_width(kind: str, thumb_size: tuple[int, int]) -> int:
  """Text tiles are two thumbnails wide."""
  return thumb_size[0] * (2 if kind == "text" else 1)


def _image_tile(path: str, thumb_size: tuple[int, int]) -> Image.Image:
  with Image.open(path) as image:
    return image.convert("RGB").resize(thumb_size)


def _text_tile(text: str, size: tuple[int, int]) -> Image.Image:
  tile = Image.new("RGB", size, BACKGROUND)
  draw = ImageDraw.Draw(tile)
  font = ImageFont.load_default()
  chars = max(1, int(size[0] // max(font.getlength("n"), 1)))
  line_height = font.getbbox("Ag")[3] + 2
  lines = textwrap.wrap(text, chars)[:max(1, size[1] // line_height)]
  for i, line in enumerate(lines):
    draw.text((2, 2 + i * line_height), line, fill=(0, 0, 0), font=font)
  return tile


def _paste_framed(canvas: Image.Image, tile: Image.Image, x: int, y: int,
                  colour: tuple[int, int, int]) -> int:
  """Pastes `tile` in a border of `colour`; returns the next free x."""
  width, height = tile.size[0] + 2 * BORDER, tile.size[1] + 2 * BORDER
  ImageDraw.Draw(canvas).rectangle((x, y, x + width - 1, y + height - 1),
                                   fill=colour)
  canvas.paste(tile, (x + BORDER, y + BORDER))
  return x + width + GAP


def save_ranked_results(path: str, task: EvalTask, topk_indices: np.ndarray,
                        topk_matches: np.ndarray,
                        query_indices: Sequence[int] | None = None,
                        thumb_size: tuple[int, int] = (64, 128)
                        ) -> Image.Image:
  """Draws ranked lists as a PNG at `path` and returns the picture.

  Each row: the query as `task.query_kind` makes it (an image, a sketch, a
  text tile, or an image with its instruction text or clothes template) in a
  grey frame, then the top-k gallery thumbnails framed green (match) or red
  (non-match); entries of -1 (fewer valid items than k) stay blank.

  Args:
    path: the PNG to write.
    task: the evaluated task (queries, gallery, query kind).
    topk_indices, topk_matches: [Q, k] from `evaluate`.
    query_indices: the queries to draw, one row each (default: all).
    thumb_size: (width, height) of a thumbnail.
  """
  topk_indices, topk_matches = np.asarray(topk_indices), np.asarray(
      topk_matches)
  rows = range(len(task.query)) if query_indices is None else query_indices
  parts = _query_parts(task.query[0], task.query_kind)
  tile_width = thumb_size[0] + 2 * BORDER + GAP
  tile_height = thumb_size[1] + 2 * BORDER + GAP
  query_width = sum(_part_width(kind, thumb_size) + 2 * BORDER + GAP
                    for kind, _ in parts)
  width = GAP + query_width + QUERY_GAP + topk_indices.shape[1] * tile_width
  canvas = Image.new("RGB", (width, GAP + len(rows) * tile_height), BACKGROUND)
  for row, q in enumerate(rows):
    x, y = GAP, GAP + row * tile_height
    for kind, content in _query_parts(task.query[q], task.query_kind):
      size = (_part_width(kind, thumb_size), thumb_size[1])
      tile = (_text_tile(content, size) if kind == "text"
              else _image_tile(content, size))
      x = _paste_framed(canvas, tile, x, y, QUERY_COLOUR)
    x = GAP + query_width + QUERY_GAP
    for index, match in zip(topk_indices[q], topk_matches[q]):
      if index >= 0:
        _paste_framed(canvas, _image_tile(task.gallery[index].path,
                                          thumb_size), x, y,
                      MATCH_COLOUR if match else NON_MATCH_COLOUR)
      x += tile_width
  canvas.save(path, format="PNG")
  return canvas
