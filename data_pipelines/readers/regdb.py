"""RegDB: paired visible and thermal images, ten official train/test trials.

idx/<split>_<visible|thermal>_<trial>.txt lists 'Visible/<pid>/<name>.bmp
<label>'; the pid is the folder. Camera 0 is visible, camera 1 thermal.
"""

from __future__ import annotations

import pathlib

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

LAYOUT = """\
  RegDB/                          (the root, or a folder that holds it)
    Visible/<pid>/female_front_v_00001_1.bmp ...
    Thermal/<pid>/female_front_t_00001_1.bmp ...
    idx/train_visible_<trial>.txt  idx/train_thermal_<trial>.txt
    idx/test_visible_<trial>.txt   idx/test_thermal_<trial>.txt
      (trial 1..10; lines 'Visible/1/female_front_v_00001_1.bmp 0')"""

# List name part -> (modality, camera).
_SPECTRA = {"visible": ("rgb", 0), "thermal": ("ir", 1)}


def _read_list(base: pathlib.Path, list_name: str, spectrum: str
               ) -> list[Record]:
  modality, camera = _SPECTRA[spectrum]
  records = []
  for relative, _ in common.read_rows(base / "idx" / list_name, 2):
    pid = int(pathlib.PurePosixPath(relative).parent.name)
    records.append(Record(str(base / relative), pid=pid, camid=camera,
                          modality=modality, orig_pid=pid))
  return records


def read_regdb(root: str, trial: int = 1) -> ReIDData:
  """Reads RegDB trial `trial` (1..10)."""
  lists = {(split, spectrum): f"{split}_{spectrum}_{trial}.txt"
           for split in ("train", "test") for spectrum in _SPECTRA}
  required = ["Visible", "Thermal", *(f"idx/{n}" for n in lists.values())]
  base = common.find_root(f"RegDB (trial {trial})", root, required, LAYOUT,
                          ("RegDB",))
  read = {key: _read_list(base, name, key[1]) for key, name in lists.items()}
  visible, thermal = read["test", "visible"], read["test", "thermal"]
  return ReIDData(
      name="regdb",
      train=common.relabel(read["train", "visible"] + read["train", "thermal"]),
      tasks={"v2i": common.make_task("regdb", "v2i", "v2i", visible, thermal),
             "i2v": common.make_task("regdb", "i2v", "i2v", thermal, visible)})
