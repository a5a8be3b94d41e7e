"""Tiny dataset folders in the true on-disk layouts, with real image files.

Each `make_<dataset>(base)` writes the dataset under `base` with the folder
and file naming of its release and returns the root to hand to its reader.
Every image is a real, tiny JPEG/PNG/BMP with a pixel pattern of its own, so
no two fixture files are identical.
"""

from __future__ import annotations

import itertools
import json
import pathlib
from typing import Callable, Iterable

from PIL import Image

_FORMATS = {".jpg": "JPEG", ".png": "PNG", ".bmp": "BMP"}
_serial = itertools.count(1)


def write_image(path: pathlib.Path) -> pathlib.Path:
  """Writes a 8x16 image whose 32-bit block pattern no other call repeats."""
  bits = next(_serial)
  image = Image.new("RGB", (8, 16))
  for block in range(32):
    value = 255 if bits >> block & 1 else 0
    x, y = block % 4 * 2, block // 4 * 2
    for dx, dy in itertools.product(range(2), range(2)):
      image.putpixel((x + dx, y + dy), (value, 255 - value, 90))
  path.parent.mkdir(parents=True, exist_ok=True)
  image.save(path, format=_FORMATS[path.suffix])
  return path


def _images(root: pathlib.Path, names: Iterable[str]) -> None:
  for name in names:
    write_image(root / name)


def _text(path: pathlib.Path, lines: Iterable[str]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(f"{line}\n" for line in lines))


def make_market1501(base: pathlib.Path) -> pathlib.Path:
  root = base / "Market-1501-v15.09.15"
  _images(root / "bounding_box_train", [
      "0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg",
      "0007_c3s3_077419_03.jpg", "0007_c6s3_094867_01.jpg",
      "0010_c1s1_002301_02.jpg", "0010_c5s1_002726_01.jpg"])
  (root / "bounding_box_train" / "Thumbs.db").write_bytes(b"\0" * 16)
  _images(root / "query",
          ["0001_c1s1_001051_00.jpg", "0003_c2s1_000476_00.jpg"])
  _images(root / "bounding_box_test", [
      "0001_c2s1_000301_01.jpg", "0001_c1s1_001101_02.jpg",
      "0003_c4s2_012345_01.jpg", "0000_c5s3_001234_01.jpg",
      "-1_c1s1_000401_03.jpg", "-1_c3s2_000111_04.jpg"])
  return root


def make_dukemtmc(base: pathlib.Path) -> pathlib.Path:
  root = base / "DukeMTMC-reID"
  _images(root / "bounding_box_train", [
      "0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg",
      "0005_c8_f0123456.jpg", "0005_c1_f0000301.jpg"])
  _images(root / "query", ["0002_c1_f0044158.jpg"])
  _images(root / "bounding_box_test", [
      "0002_c7_f0054321.jpg", "0002_c1_f0044999.jpg", "0008_c3_f0000123.jpg"])
  return root


def make_msmt17(base: pathlib.Path, version: str = "V1") -> pathlib.Path:
  root = base / f"MSMT17_{version}"
  train_dir, test_dir = (("train", "test") if version == "V1"
                         else ("mask_train_v2", "mask_test_v2"))
  lists = {
      "list_train.txt": (train_dir, [
          ("0000/0000_000_01_0303morning_0015_0.jpg", 0),
          ("0000/0000_001_05_0303noon_0100_1.jpg", 0),
          ("0001/0001_000_15_0304afternoon_0200_0.jpg", 1),
          ("0001/0001_001_03_0304morning_0050_2.jpg", 1)]),
      "list_val.txt": (train_dir, [
          ("0002/0002_000_07_0303noon_0300_0.jpg", 2),
          ("0002/0002_001_08_0303noon_0310_1.jpg", 2)]),
      "list_query.txt": (test_dir, [
          ("0000/0000_000_02_0303morning_0036_1.jpg", 0)]),
      "list_gallery.txt": (test_dir, [
          ("0000/0000_001_09_0304noon_0050_0.jpg", 0),
          ("0001/0001_000_12_0304noon_0060_0.jpg", 1)]),
  }
  for list_name, (image_dir, entries) in lists.items():
    _images(root / image_dir, [name for name, _ in entries])
    _text(root / list_name, [f"{name} {pid}" for name, pid in entries])
  return root


def make_cuhk03(base: pathlib.Path) -> pathlib.Path:
  root = base / "cuhk03-np"
  for variant, train in (
      ("labeled", ["0001_c1_1.png", "0001_c2_6.png", "0004_c1_2.png",
                   "0004_c2_7.png"]),
      ("detected", ["0001_c1_1.png", "0001_c2_6.png", "0004_c1_3.png"])):
    _images(root / variant / "bounding_box_train", train)
    _images(root / variant / "query", ["0002_c1_1.png", "0002_c2_6.png"])
    _images(root / variant / "bounding_box_test", [
        "0002_c1_2.png", "0002_c2_7.png", "0003_c1_1.png", "0003_c2_8.png"])
  return root


def make_sysu_mm01(base: pathlib.Path) -> pathlib.Path:
  root = base / "SYSU-MM01"
  images = {  # (camera, pid) -> number of images
      (1, 1): 2, (3, 1): 1,
      (2, 2): 1, (6, 2): 2,
      (4, 3): 1, (3, 3): 1,
      (1, 4): 3, (2, 4): 1, (4, 4): 1, (3, 4): 2, (6, 4): 1,
      (5, 5): 2, (6, 5): 1,
  }
  for (camera, pid), count in images.items():
    _images(root / f"cam{camera}" / f"{pid:04d}",
            [f"{i:04d}.jpg" for i in range(1, count + 1)])
  _text(root / "exp" / "train_id.txt", ["1,2"])
  _text(root / "exp" / "val_id.txt", ["3"])
  _text(root / "exp" / "test_id.txt", ["4,5"])
  return root


def make_regdb(base: pathlib.Path) -> pathlib.Path:
  root = base / "RegDB"
  visible = {1: ["female_front_v_00001_1.bmp", "female_front_v_00002_1.bmp"],
             2: ["male_back_v_00101_2.bmp"],
             3: ["male_front_v_00201_3.bmp", "male_front_v_00202_3.bmp"]}
  thermal = {1: ["female_front_t_00001_1.bmp", "female_front_t_00002_1.bmp"],
             2: ["male_back_t_00101_2.bmp"],
             3: ["male_front_t_00201_3.bmp"]}
  for folder, files in (("Visible", visible), ("Thermal", thermal)):
    for pid, names in files.items():
      _images(root / folder / str(pid), names)
  for trial, train_ids, test_ids in ((1, (1, 2), (3,)), (2, (2, 3), (1,))):
    for split, ids in (("train", train_ids), ("test", test_ids)):
      for spectrum, folder, files in (("visible", "Visible", visible),
                                      ("thermal", "Thermal", thermal)):
        _text(root / "idx" / f"{split}_{spectrum}_{trial}.txt", [
            f"{folder}/{pid}/{name} {label}"
            for label, pid in enumerate(ids) for name in files[pid]])
  return root


def make_llcm(base: pathlib.Path) -> pathlib.Path:
  root = base / "LLCM"
  lists = {
      "train_vis": [("0001", "0001_c01_s185535_f7010_vis.jpg", 0),
                    ("0001", "0001_c02_s185600_f7100_vis.jpg", 0),
                    ("0002", "0002_c04_s190000_f0100_vis.jpg", 1)],
      "train_nir": [("0001", "0001_c06_s200656_f4830_nir.jpg", 0),
                    ("0002", "0002_c04_s190500_f0200_nir.jpg", 1)],
      "test_vis": [("0003", "0003_c01_s100000_f0001_vis.jpg", 0),
                   ("0003", "0003_c01_s100000_f0002_vis.jpg", 0),
                   ("0003", "0003_c05_s100100_f0003_vis.jpg", 0)],
      "test_nir": [("0003", "0003_c06_s110000_f0010_nir.jpg", 0),
                   ("0003", "0003_c06_s110000_f0011_nir.jpg", 0),
                   ("0003", "0003_c09_s110100_f0012_nir.jpg", 0)],
  }
  for list_name, entries in lists.items():
    spectrum = list_name.split("_")[1]
    paths = [f"{spectrum}/{pid}/{name}" for pid, name, _ in entries]
    _images(root, paths)
    _text(root / "idx" / f"{list_name}.txt",
          [f"{p} {label}" for p, (_, _, label) in zip(paths, entries)])
  return root


def make_ltcc(base: pathlib.Path) -> pathlib.Path:
  root = base / "LTCC_ReID"
  _images(root / "train", [
      "001_1_c11_015976.png", "001_1_c5_016010.png", "001_2_c3_000123.png",
      "005_1_c7_002000.png", "005_1_c8_002100.png"])
  _images(root / "query", ["010_1_c1_000100.png", "012_2_c4_000300.png"])
  _images(root / "test", [
      "010_1_c2_000200.png", "010_2_c6_000400.png", "012_1_c9_000500.png",
      "012_2_c10_000600.png"])
  return root


def make_prcc(base: pathlib.Path) -> pathlib.Path:
  root = base / "prcc"
  _images(root / "rgb", [
      "train/001/A_cropped_rgb001.jpg", "train/001/B_cropped_rgb010.jpg",
      "train/001/C_cropped_rgb100.jpg", "train/003/A_cropped_rgb001.jpg",
      "train/003/C_cropped_rgb050.jpg", "val/002/A_cropped_rgb001.jpg",
      "test/A/004/cropped_rgb001.jpg", "test/A/004/cropped_rgb002.jpg",
      "test/B/004/cropped_rgb010.jpg", "test/C/004/cropped_rgb020.jpg",
      "test/C/004/cropped_rgb021.jpg", "test/A/006/cropped_rgb001.jpg",
      "test/C/006/cropped_rgb005.jpg"])
  return root


def make_vc_clothes(base: pathlib.Path) -> pathlib.Path:
  root = base / "VC-Clothes"
  _images(root / "train", [
      "0001-01-01-01.jpg", "0001-02-01-01.jpg", "0001-03-02-01.jpg",
      "0002-04-01-02.jpg", "0002-01-01-03.jpg"])
  _images(root / "query", [
      "0100-01-01-01.jpg", "0100-03-01-01.jpg", "0101-04-02-01.jpg"])
  _images(root / "gallery", [
      "0100-02-01-02.jpg", "0100-04-02-02.jpg", "0101-03-01-02.jpg",
      "0101-02-01-03.jpg"])
  return root


def _pedes(root: pathlib.Path, annotation_file: str, path_key: str,
           entries: list[tuple[int, str, str, list[str]]]) -> pathlib.Path:
  _images(root / "imgs", [path for _, _, path, _ in entries])
  (root / annotation_file).write_text(json.dumps([
      {"id": pid, "split": split, path_key: path, "captions": captions,
       "processed_tokens": [c.lower().split() for c in captions]}
      for pid, split, path, captions in entries]))
  return root


def make_cuhk_pedes(base: pathlib.Path) -> pathlib.Path:
  return _pedes(base / "CUHK-PEDES", "reid_raw.json", "file_path", [
      (1, "train", "CUHK01/0363004.png",
       ["A woman in a red coat.", "She wears black boots. "]),
      (1, "train", "cam_a/000_45.bmp", ["The woman walks with a red coat."]),
      (2, "train", "Market/0002_c1s1_000451_03.jpg",
       ["A man in a grey shirt.", "He has short hair."]),
      (11004, "test", "test_query/p10376_s14338.jpg",
       ["A man with a backpack.", "The man carries a blue bag."]),
      (11005, "test", "CUHK03/1_001_1_01.png", ["A girl in a white dress."]),
      (12000, "val", "CUHK01/0400001.png", ["A boy on a bike."]),
  ])


def make_icfg_pedes(base: pathlib.Path) -> pathlib.Path:
  return _pedes(base / "ICFG-PEDES", "ICFG-PEDES.json", "file_path", [
      (0, "train", "train/0000/0000_000_01_0303morning_0015_0.jpg",
       ["The man wears a black jacket and jeans."]),
      (1, "train", "train/0001/0001_002_04_0303noon_0120_1.jpg",
       ["A woman with a pink scarf."]),
      (3102, "test", "test/3102/3102_000_05_0304morning_0010_0.jpg",
       ["A person holding an umbrella."]),
  ])


def make_rstpreid(base: pathlib.Path) -> pathlib.Path:
  return _pedes(base / "RSTPReid", "data_captions.json", "img_path", [
      (0, "train", "0000_c14_0031.jpg", ["A man in blue.", "He wears blue."]),
      (0, "train", "0000_c5_0042.jpg", ["Blue clothes.", "A man walking."]),
      (3800, "val", "3800_c1_0001.jpg", ["A val person.", "Not used."]),
      (3901, "test", "3901_c14_0004.jpg", ["A woman in green.", "Green top."]),
      (3901, "test", "3901_c7_0010.jpg", ["Green shirt.", "She walks."]),
  ])


def make_cocas_real2(base: pathlib.Path) -> pathlib.Path:
  root = base / "COCAS-Real2"
  query = [
      ("images/0101_01_c03_000010.jpg", "templates/0101_02.jpg", 101, 2, 3),
      ("images/0102_01_c05_000020.jpg", "templates/0102_01.jpg", 102, 1, 5)]
  gallery = [("images/0101_02_c07_000030.jpg", 101, 2, 7),
             ("images/0101_01_c05_000040.jpg", 101, 1, 5),
             ("images/0102_01_c03_000050.jpg", 102, 1, 3)]
  _images(root, [q[0] for q in query] + [q[1] for q in query] +
          [g[0] for g in gallery])
  _text(root / "query.txt", [" ".join(map(str, q)) for q in query])
  _text(root / "gallery.txt", [" ".join(map(str, g)) for g in gallery])
  return root


def make_cocas_synthetic(base: pathlib.Path) -> pathlib.Path:
  root = base / "COCAS-Synthetic"
  rows = [
      ("GTA_v2/0001/0001_01_0001.jpg", "GTA_v2/templates/0001_01.jpg", 1, 1),
      ("GTA_v2/0001/0001_02_0002.jpg", "GTA_v2/templates/0001_02.jpg", 1, 2),
      ("GTA_v2_2/0500/0500_01_0001.jpg", "GTA_v2_2/templates/0500_01.jpg",
       500, 1),
      ("GTA_v2_2/0500/0500_01_0002.jpg", "GTA_v2_2/templates/0500_01.jpg",
       500, 1)]
  _images(root, sorted({p for row in rows for p in row[:2]}))
  _text(root / "cocas_v2_syn_train.txt", [" ".join(map(str, r)) for r in rows])
  return root


# Dataset name -> the fixture its reader reads.
FIXTURES: dict[str, Callable[[pathlib.Path], pathlib.Path]] = {
    "market1501": make_market1501,
    "dukemtmc": make_dukemtmc,
    "msmt17": make_msmt17,
    "cuhk03": make_cuhk03,
    "mlr_cuhk03": make_cuhk03,
    "sysu_mm01": make_sysu_mm01,
    "regdb": make_regdb,
    "llcm": make_llcm,
    "ltcc": make_ltcc,
    "prcc": make_prcc,
    "vc_clothes": make_vc_clothes,
    "cuhk_pedes": make_cuhk_pedes,
    "icfg_pedes": make_icfg_pedes,
    "rstpreid": make_rstpreid,
    "cocas_real2": make_cocas_real2,
    "cocas_synthetic": make_cocas_synthetic,
}
