"""Text-to-image sets: CUHK-PEDES, ICFG-PEDES and RSTPReid.

One caption JSON lists every image: {'id', 'split', 'captions', and the image
path under imgs/ as 'file_path' (RSTPReid: 'img_path')}. Train records carry
all captions of their image; the 'text' task has one query per test caption
(path '', captions=(caption,)) and the test images as gallery. The sets have
no camera labels: camid is 0.
"""

from __future__ import annotations

import json
import pathlib

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

CUHK_PEDES_LAYOUT = """\
  CUHK-PEDES/                     (the root, or a folder that holds it)
    imgs/cam_a/ cam_b/ CUHK01/ CUHK03/ Market/ test_query/ train_query/ ...
    reid_raw.json  [{"id": 1, "split": "train",
                     "file_path": "CUHK01/0363004.png",
                     "captions": ["...", "..."], ...}, ...]"""

ICFG_PEDES_LAYOUT = """\
  ICFG-PEDES/                     (the root, or a folder that holds it)
    imgs/train/<pid>/...jpg  imgs/test/<pid>/...jpg
    ICFG-PEDES.json  [{"id": 0, "split": "train",
      "file_path": "train/0000/0000_000_01_0303morning_0015_0.jpg",
      "captions": ["..."], ...}, ...]"""

RSTPREID_LAYOUT = """\
  RSTPReid/                       (the root, or a folder that holds it)
    imgs/3901_c14_0004.jpg ...
    data_captions.json  [{"id": 0, "split": "train",
                          "img_path": "3901_c14_0004.jpg",
                          "captions": ["...", "..."]}, ...]"""


def _read(name: str, base: pathlib.Path, annotation_file: str,
          path_key: str) -> ReIDData:
  annotations = json.loads((base / annotation_file).read_text())
  train, gallery, query = [], [], []
  for item in annotations:
    pid = int(item["id"])
    captions = tuple(c.strip() for c in item["captions"])
    path = str(base / "imgs" / item[path_key])
    if item["split"] == "train":
      train.append(Record(path, pid=pid, camid=0, captions=captions,
                          orig_pid=pid))
    elif item["split"] == "test":
      gallery.append(Record(path, pid=pid, camid=0, orig_pid=pid))
      query += [Record("", pid=pid, camid=0, captions=(c,), orig_pid=pid)
                for c in captions]
  return ReIDData(
      name=name, train=common.relabel(train),
      tasks={"text": common.make_task(name, "text", "text", query, gallery,
                                      query_kind="text")})


def read_cuhk_pedes(root: str) -> ReIDData:
  """Reads CUHK-PEDES (reid_raw.json)."""
  base = common.find_root("CUHK-PEDES", root, ("imgs", "reid_raw.json"),
                          CUHK_PEDES_LAYOUT, ("CUHK-PEDES",))
  return _read("cuhk_pedes", base, "reid_raw.json", "file_path")


def read_icfg_pedes(root: str) -> ReIDData:
  """Reads ICFG-PEDES (ICFG-PEDES.json, also found as ICFG_PEDES.json)."""
  for annotation_file in ("ICFG-PEDES.json", "ICFG_PEDES.json"):
    base = common.locate(root, ("imgs", annotation_file), ("ICFG-PEDES",))
    if base is not None:
      return _read("icfg_pedes", base, annotation_file, "file_path")
  raise common.not_found("ICFG-PEDES", root, ("imgs", "ICFG-PEDES.json"),
                         ICFG_PEDES_LAYOUT)


def read_rstpreid(root: str) -> ReIDData:
  """Reads RSTPReid (data_captions.json)."""
  base = common.find_root("RSTPReid", root, ("imgs", "data_captions.json"),
                          RSTPREID_LAYOUT, ("RSTPReid",))
  return _read("rstpreid", base, "data_captions.json", "img_path")
