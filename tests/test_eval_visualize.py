"""Ranked-result pictures from tiny generated images."""

import numpy as np
import pytest
from PIL import Image

from data_pipelines.records import EvalTask, Record
from jreid.eval import visualize


@pytest.fixture(name="images")
def _images(tmp_path):
  paths = []
  for i, colour in enumerate([(0, 0, 255), (255, 255, 0), (0, 255, 255),
                              (255, 0, 255)]):
    path = tmp_path / f"{i}.png"
    Image.new("RGB", (10, 20), colour).save(path)
    paths.append(str(path))
  return paths


def _task(images, query_kind):
  query = [Record(images[0], 1, 0, captions=("a man in a red coat",),
                  instruction="Ignore clothes.", template=images[3]),
           Record(images[1], 2, 0, captions=("a woman",),
                  instruction="Ignore clothes.", template=images[3])]
  gallery = [Record(p, pid, 1) for p, pid in zip(images, (1, 2, 1, 3))]
  return EvalTask("t", "standard", query_kind, query, gallery)


def test_eval_picture_size_and_border_colours(images, tmp_path):
  path = tmp_path / "ranked.png"
  indices = np.array([[2, 1, 0], [1, 3, -1]])
  matches = np.array([[True, False, True], [True, False, False]])
  visualize.save_ranked_results(str(path), _task(images, "image"), indices,
                                matches, thumb_size=(8, 16))
  picture = Image.open(path)
  assert picture.format == "PNG"
  # gap 4 + query (8 + 2 * 4 + 4) + 16 + 3 tiles of 20; rows of 16 + 8 + 4.
  assert picture.size == (4 + 20 + 16 + 3 * 20, 4 + 2 * 28)
  pixels = picture.convert("RGB")
  start = 4 + 20 + 16
  for row in range(2):
    y = 4 + row * 28
    assert pixels.getpixel((4, y)) == visualize.QUERY_COLOUR
    for j in range(3):
      colour = pixels.getpixel((start + j * 20 + 1, y + 1))
      if indices[row, j] < 0:
        assert colour == visualize.BACKGROUND
      else:
        assert colour == (visualize.MATCH_COLOUR if matches[row, j]
                          else visualize.NON_MATCH_COLOUR)
  # The thumbnail of gallery item 2 (cyan) sits inside the first frame.
  assert pixels.getpixel((start + 8, 4 + 12)) == (0, 255, 255)


@pytest.mark.parametrize("query_kind,query_width", [
    ("text", 16 + 8 + 4), ("sketch", 8 + 8 + 4),
    ("text+sketch", (8 + 8 + 4) + (16 + 8 + 4)),
    ("image+instruction", (8 + 8 + 4) + (16 + 8 + 4)),
    ("image+template", 2 * (8 + 8 + 4))])
def test_eval_picture_query_kinds(images, tmp_path, query_kind, query_width):
  picture = visualize.save_ranked_results(
      str(tmp_path / "r.png"), _task(images, query_kind),
      np.array([[0, 1], [2, 3]]), np.array([[True, False], [False, False]]),
      query_indices=[1], thumb_size=(8, 16))
  assert picture.size == (4 + query_width + 16 + 2 * 20, 4 + 28)
  if query_kind == "image+template":  # the template (magenta) follows
    assert picture.getpixel((4 + 20 + 8, 4 + 12)) == (255, 0, 255)
