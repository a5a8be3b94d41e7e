"""SYSU-MM01: six cameras, 1, 2, 4, 5 visible and 3, 6 infrared.

Queries are every infrared image of the test ids; the gallery every visible
image of the test ids on the protocol's cameras (all-search: 1, 2, 4, 5;
indoor: 1, 2). The evaluation draws each trial's one image per id and camera
from it (jreid.eval.protocols.gallery_trials).
"""

from __future__ import annotations

import pathlib

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

IR_CAMERAS = (3, 6)
ALL_SEARCH_CAMERAS = (1, 2, 4, 5)
INDOOR_CAMERAS = (1, 2)

LAYOUT = """\
  SYSU-MM01/                      (the root, or a folder that holds it)
    cam1/ ... cam6/  <pid:04d>/0001.jpg ...   (cam3, cam6 infrared)
    exp/train_id.txt  exp/val_id.txt  exp/test_id.txt   (ids '1,2,4,...')"""

_ID_FILES = ("exp/train_id.txt", "exp/val_id.txt", "exp/test_id.txt")
_CAMERA_DIRS = tuple(f"cam{c}" for c in range(1, 7))


def _read_ids(base: pathlib.Path, pids: list[int]) -> list[Record]:
  records = []
  for camera in range(1, 7):
    modality = "ir" if camera in IR_CAMERAS else "rgb"
    for pid in sorted(pids):
      folder = base / f"cam{camera}" / f"{pid:04d}"
      if folder.is_dir():
        records += [Record(str(p), pid=pid, camid=camera - 1,
                           modality=modality, orig_pid=pid)
                    for p in common.list_images(folder)]
  return records


def read_sysu_mm01(root: str, with_val: bool = True) -> ReIDData:
  """Reads SYSU-MM01; `with_val` trains on val_id.txt too, as is customary."""
  base = common.find_root("SYSU-MM01", root, _ID_FILES + _CAMERA_DIRS, LAYOUT,
                          ("SYSU-MM01",))
  train_ids = common.read_id_list(base / "exp/train_id.txt")
  if with_val:
    train_ids += common.read_id_list(base / "exp/val_id.txt")
  test = _read_ids(base, common.read_id_list(base / "exp/test_id.txt"))
  query = [r for r in test if r.modality == "ir"]

  def task(protocol, cameras):
    gallery = [r for r in test if r.camid + 1 in cameras]
    return common.make_task("sysu_mm01", protocol, protocol, query, gallery)

  return ReIDData(
      name="sysu_mm01", train=common.relabel(_read_ids(base, train_ids)),
      tasks={"sysu_all": task("sysu_all", ALL_SEARCH_CAMERAS),
             "sysu_indoor": task("sysu_indoor", INDOOR_CAMERAS)})
