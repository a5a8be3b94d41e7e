"""MSMT17, V1 or V2: image folders and list files '<relative path> <pid>'.

Names are '<pid>_<index>_<camera>_<date+time>_<frame>_<n>.jpg'; the camera is
the third field (01..15). Test pids restart at 0, independent of train pids.
"""

from __future__ import annotations

import pathlib

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt",
          "list_gallery.txt")
# Version folder -> (train image folder, test image folder).
_VERSIONS = {
    "MSMT17_V1": ("train", "test"),
    "MSMT17_V2": ("mask_train_v2", "mask_test_v2"),
}

LAYOUT = """\
  MSMT17_V1/                      (the root, or a folder that holds it)
    train/0000/0000_000_01_0303morning_0015_0.jpg ...
    test/0000/0000_000_01_0303morning_0036_1.jpg ...
    list_train.txt  list_val.txt  list_query.txt  list_gallery.txt
      (lines '0000/0000_000_01_0303morning_0015_0.jpg 0')
  or MSMT17_V2/ with mask_train_v2/, mask_test_v2/ in place of train/, test/"""


def _read_list(image_dir: pathlib.Path, list_path: pathlib.Path
               ) -> list[Record]:
  records = []
  for relative, pid in common.read_rows(list_path, 2):
    camera = int(pathlib.PurePosixPath(relative).name.split("_")[2])
    records.append(Record(str(image_dir / relative), pid=int(pid),
                          camid=camera - 1, orig_pid=int(pid)))
  return records


def read_msmt17(root: str, with_val: bool = True) -> ReIDData:
  """Reads MSMT17; `with_val` adds list_val.txt to training (32,621 images)."""
  for version, (train_dir, test_dir) in _VERSIONS.items():
    base = common.locate(root, (train_dir, test_dir, *_LISTS), (version,))
    if base is not None:
      break
  else:
    train_dir, test_dir = _VERSIONS["MSMT17_V1"]
    raise common.not_found("MSMT17", root, (train_dir, test_dir, *_LISTS),
                           LAYOUT)
  train = _read_list(base / train_dir, base / "list_train.txt")
  if with_val:
    train += _read_list(base / train_dir, base / "list_val.txt")
  query = _read_list(base / test_dir, base / "list_query.txt")
  gallery = _read_list(base / test_dir, base / "list_gallery.txt")
  return ReIDData(
      name="msmt17", train=common.relabel(train),
      tasks={"standard": common.make_task("msmt17", "standard", "standard",
                                          query, gallery)})
