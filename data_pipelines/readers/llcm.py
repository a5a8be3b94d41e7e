"""LLCM: low-light visible (vis/) and near-infrared (nir/) images, 9 cameras.

idx/<train|test>_<vis|nir>.txt lists '<vis|nir>/<pid>/<name> <label>', the
name carrying the camera as '_c<camera>_'. Queries are every test image of
one modality; the gallery of one trial holds one random image per id and
camera of the other, drawn with the trial as seed (the protocol averages
trials 0..9).
"""

from __future__ import annotations

import pathlib
import re

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

LAYOUT = """\
  LLCM/                           (the root, or a folder that holds it)
    vis/<pid:04d>/0001_c01_s185535_f7010_vis.jpg ...
    nir/<pid:04d>/0001_c06_s200656_f4830_nir.jpg ...
    idx/train_vis.txt  idx/train_nir.txt  idx/test_vis.txt  idx/test_nir.txt
      (lines 'vis/0001/0001_c01_s185535_f7010_vis.jpg 0')"""

_CAMERA = re.compile(r"_c(\d+)")
_MODALITIES = {"vis": "rgb", "nir": "ir"}


def _read_list(base: pathlib.Path, split: str, spectrum: str) -> list[Record]:
  records = []
  for name, _ in common.read_rows(base / "idx" / f"{split}_{spectrum}.txt", 2):
    relative = pathlib.PurePosixPath(name)
    pid = int(relative.parent.name)
    camera = int(common.parse_name(_CAMERA, base / relative)[1])
    records.append(Record(str(base / relative), pid=pid, camid=camera - 1,
                          modality=_MODALITIES[spectrum], orig_pid=pid))
  return records


def read_llcm(root: str, trial: int = 0) -> ReIDData:
  """Reads LLCM; `trial` seeds the single-shot gallery draw."""
  required = [*_MODALITIES, *(f"idx/{s}_{m}.txt" for s in ("train", "test")
                               for m in _MODALITIES)]
  base = common.find_root("LLCM", root, required, LAYOUT, ("LLCM",))
  visible, infrared = (_read_list(base, "test", m) for m in _MODALITIES)
  train = _read_list(base, "train", "vis") + _read_list(base, "train", "nir")

  def task(key, query, gallery):
    return common.make_task("llcm", key, key, query,
                            common.sample_gallery(gallery, seed=trial))

  return ReIDData(name="llcm", train=common.relabel(train),
                  tasks={"v2i": task("v2i", visible, infrared),
                         "i2v": task("i2v", infrared, visible)})
