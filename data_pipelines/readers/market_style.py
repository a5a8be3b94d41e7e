"""Market-1501, DukeMTMC-reID and CUHK03 (new protocol): the Market layout.

Images are named '<pid>_c<camera>...' in bounding_box_train/, query/ and
bounding_box_test/. In Market-1501 pid -1 marks junk boxes (dropped, as the
standard evaluation ignores them) and pid 0 distractors (kept in the gallery
with pid -1, so that they match no query).
"""

from __future__ import annotations

import pathlib
import re

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

_NAME = re.compile(r"^(-?\d+)_c(\d+)")
_SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")

MARKET1501_LAYOUT = """\
  Market-1501-v15.09.15/          (the root, or a folder that holds it)
    bounding_box_train/0002_c1s1_000451_03.jpg ...
    query/0001_c1s1_001051_00.jpg ...
    bounding_box_test/0001_c1s1_001051_01.jpg ...
                      0000_*.jpg (distractors), -1_*.jpg (junk)"""

DUKEMTMC_LAYOUT = """\
  DukeMTMC-reID/                  (the root, or a folder that holds it)
    bounding_box_train/0001_c2_f0046182.jpg ...
    query/0005_c2_f0046985.jpg ...
    bounding_box_test/0002_c1_f0044158.jpg ..."""

CUHK03_LAYOUT = """\
  cuhk03-np/                      (the root, or a folder that holds it)
    labeled/  bounding_box_train/0001_c1_1.png ...  query/  bounding_box_test/
    detected/ bounding_box_train/  query/  bounding_box_test/"""


def _read_dir(directory: pathlib.Path, distractor_pid: int | None
              ) -> list[Record]:
  records = []
  for path in common.list_images(directory):
    match = common.parse_name(_NAME, path)
    pid, camera = int(match[1]), int(match[2])
    if pid == -1:
      continue
    label = -1 if pid == distractor_pid else pid
    records.append(Record(str(path), pid=label, camid=camera - 1, orig_pid=pid))
  return records


def _read(name: str, base: pathlib.Path,
          distractor_pid: int | None = None) -> ReIDData:
  train, query, gallery = (_read_dir(base / d, distractor_pid)
                           for d in _SPLIT_DIRS)
  return ReIDData(
      name=name, train=common.relabel(train),
      tasks={"standard": common.make_task(name, "standard", "standard",
                                          query, gallery)})


def read_market1501(root: str) -> ReIDData:
  """Reads Market-1501; distractors (pid 0) get pid -1, junk is dropped."""
  base = common.find_root("Market-1501", root, _SPLIT_DIRS, MARKET1501_LAYOUT,
                          ("Market-1501-v15.09.15", "Market-1501"))
  return _read("market1501", base, distractor_pid=0)


def read_dukemtmc(root: str) -> ReIDData:
  """Reads DukeMTMC-reID."""
  base = common.find_root("DukeMTMC-reID", root, _SPLIT_DIRS, DUKEMTMC_LAYOUT,
                          ("DukeMTMC-reID",))
  return _read("dukemtmc", base)


def read_cuhk03(root: str, variant: str = "labeled") -> ReIDData:
  """Reads CUHK03-NP (767/700 ids); `variant` 'labeled' or 'detected'."""
  if variant not in ("labeled", "detected"):
    raise ValueError(f"CUHK03 variant must be 'labeled' or 'detected', "
                     f"got {variant!r}")
  required = [f"{variant}/{d}" for d in _SPLIT_DIRS]
  base = common.find_root(f"CUHK03-NP ({variant})", root, required,
                          CUHK03_LAYOUT, ("cuhk03-np",))
  return _read(f"cuhk03_{variant}", base / variant)
