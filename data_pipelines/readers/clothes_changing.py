"""Clothes-changing sets: LTCC, PRCC and VC-Clothes.

Every record carries a clothes id unique per (pid, outfit). Each set gets a
'cc' task (protocol 'cc': same-id same-clothes gallery items are removed too)
and a 'general' task (protocol 'general': the standard camera filter only);
PRCC and VC-Clothes also their papers' same-clothes 'sc' task.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Sequence

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

LTCC_LAYOUT = """\
  LTCC_ReID/                      (the root, or a folder that holds it)
    train/<pid>_<outfit>_c<camera>_<frame>.png   e.g. 001_1_c11_015976.png
    query/  test/                 (same naming)"""

PRCC_LAYOUT = """\
  prcc/                           (the root, or a folder that holds it)
    rgb/train/<pid>/<A|B|C>_cropped_rgb001.jpg ...   (camera = first letter)
    rgb/val/...
    rgb/test/A/<pid>/cropped_rgb001.jpg ...   test/B/<pid>/...  test/C/<pid>/...
      (cameras A and B: the same clothes; C: other clothes)"""

VC_CLOTHES_LAYOUT = """\
  VC-Clothes/                     (the root, or a folder that holds it)
    train/<pid>-<camera>-<outfit>-<index>.jpg   e.g. 0001-01-01-01.jpg
    query/  gallery/              (same naming)"""

_LTCC_NAME = re.compile(r"^(\d+)_(\d+)_c(\d+)_")
_VC_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)-\d+")
_PRCC_CAMERAS = "ABC"


def _with_clothes(items: Sequence[tuple[Record, tuple]]) -> list[Record]:
  """Gives each record the index of its (pid, outfit) key."""
  index = common.dense_index(key for _, key in items)
  return [dataclasses.replace(r, clothes_id=index[key]) for r, key in items]


def _read_ltcc_dir(directory: pathlib.Path) -> list[tuple[Record, tuple]]:
  items = []
  for path in common.list_images(directory):
    pid, outfit, camera = map(int, common.parse_name(_LTCC_NAME, path).groups())
    items.append((Record(str(path), pid=pid, camid=camera - 1, orig_pid=pid),
                  (pid, outfit)))
  return items


def read_ltcc(root: str) -> ReIDData:
  """Reads LTCC (clothes from the '<pid>_<outfit>_' name prefix)."""
  base = common.find_root("LTCC", root, ("train", "query", "test"),
                          LTCC_LAYOUT, ("LTCC_ReID",))
  train = _with_clothes(_read_ltcc_dir(base / "train"))
  query_items = _read_ltcc_dir(base / "query")
  test = _with_clothes(query_items + _read_ltcc_dir(base / "test"))
  query, gallery = test[:len(query_items)], test[len(query_items):]
  return ReIDData(
      name="ltcc", train=common.relabel(train),
      tasks={key: common.make_task("ltcc", key, key, query, gallery)
             for key in ("cc", "general")})


def _prcc_record(path: pathlib.Path, pid: int, camera: str
                 ) -> tuple[Record, tuple]:
  outfit = "C" if camera == "C" else "AB"
  return (Record(str(path), pid=pid, camid=_PRCC_CAMERAS.index(camera),
                 orig_pid=pid), (pid, outfit))


def read_prcc(root: str) -> ReIDData:
  """Reads PRCC: gallery camera A; queries B (same clothes) and C (changed).

  Tasks: 'cc' (C queries), 'general' (B and C queries) and 'sc' (B queries,
  the paper's same-clothes setting), all against the camera A gallery.
  """
  base = common.find_root("PRCC", root, ("rgb/train", "rgb/test"),
                          PRCC_LAYOUT, ("prcc",))
  train_items = [_prcc_record(path, int(folder.name), path.name[0])
                 for folder in sorted((base / "rgb/train").iterdir())
                 if folder.is_dir()
                 for path in common.list_images(folder)]
  test = _with_clothes([
      _prcc_record(path, int(folder.name), camera)
      for camera in _PRCC_CAMERAS
      for folder in sorted((base / "rgb/test" / camera).iterdir())
      if folder.is_dir()
      for path in common.list_images(folder)])
  by_camera = {c: [r for r in test if r.camid == _PRCC_CAMERAS.index(c)]
               for c in _PRCC_CAMERAS}
  gallery = by_camera["A"]
  return ReIDData(
      name="prcc", train=common.relabel(_with_clothes(train_items)),
      tasks={
          "cc": common.make_task("prcc", "cc", "cc", by_camera["C"], gallery),
          "general": common.make_task("prcc", "general", "general",
                                      by_camera["B"] + by_camera["C"], gallery),
          "sc": common.make_task("prcc", "sc", "general", by_camera["B"],
                                 gallery),
      })


def _read_vc_dir(directory: pathlib.Path) -> list[tuple[Record, tuple]]:
  items = []
  for path in common.list_images(directory):
    pid, camera, outfit = map(int, common.parse_name(_VC_NAME, path).groups())
    items.append((Record(str(path), pid=pid, camid=camera - 1, orig_pid=pid),
                  (pid, outfit)))
  return items


def read_vc_clothes(root: str) -> ReIDData:
  """Reads VC-Clothes.

  Tasks: 'general' (all four cameras), 'cc' (cameras 3 and 4, the paper's
  clothes-changing setting) and 'sc' (cameras 2 and 3, same clothes).
  """
  base = common.find_root("VC-Clothes", root, ("train", "query", "gallery"),
                          VC_CLOTHES_LAYOUT, ("VC-Clothes",))
  train = _with_clothes(_read_vc_dir(base / "train"))
  query_items = _read_vc_dir(base / "query")
  test = _with_clothes(query_items + _read_vc_dir(base / "gallery"))
  query, gallery = test[:len(query_items)], test[len(query_items):]

  def on(cameras, records):
    return [r for r in records if r.camid + 1 in cameras]

  return ReIDData(
      name="vc_clothes", train=common.relabel(train),
      tasks={
          "general": common.make_task("vc_clothes", "general", "general",
                                      query, gallery),
          "cc": common.make_task("vc_clothes", "cc", "cc", on((3, 4), query),
                                 on((3, 4), gallery)),
          "sc": common.make_task("vc_clothes", "sc", "general",
                                 on((2, 3), query), on((2, 3), gallery)),
      })
