"""Bad input: corrupt images, empty splits, single-image ids, duplicates."""

import hashlib
import logging
import shutil

import pytest

import fixtures_layouts
from data_pipelines import readers
from data_pipelines import validate


def _corrupt_market(tmp_path):
  """Market with three bad training images: id 0010 loses both of its own."""
  root = fixtures_layouts.make_market1501(tmp_path)
  train = root / "bounding_box_train"
  truncated = train / "0010_c1s1_002301_02.jpg"
  truncated.write_bytes(truncated.read_bytes()[:40])
  garbage = train / "0010_c5s1_002726_01.jpg"
  garbage.write_bytes(b"not an image at all")
  dangling = train / "0002_c2s1_000301_01.jpg"
  dangling.unlink()
  dangling.symlink_to(tmp_path / "gone.jpg")
  return root, truncated, garbage, dangling


def test_corrupt_images_are_reported_and_skipped_with_a_count(
    tmp_path, caplog):
  root, truncated, garbage, dangling = _corrupt_market(tmp_path)
  data = readers.load_dataset("market1501", str(root))
  with caplog.at_level(logging.WARNING):
    cleaned, report = validate.clean(data)
  assert sorted(report.bad_images) == sorted(
      map(str, (truncated, garbage, dangling)))
  assert report.bad_images[str(truncated)].startswith("corrupt:")
  assert report.bad_images[str(garbage)].startswith("corrupt:")
  assert report.bad_images[str(dangling)].startswith("unreadable:")
  assert report.skipped == 3
  assert len(cleaned.train) == 3
  # Id 0010 is gone: the remaining ids 0002, 0007 are relabelled 0, 1.
  assert sorted({(r.pid, r.orig_pid) for r in cleaned.train}) == [(0, 2),
                                                                  (1, 7)]
  assert cleaned.tasks == data.tasks
  assert "skipped 3 records" in caplog.text and str(truncated) in caplog.text
  assert f"{truncated} (corrupt:" in report.summary()


def test_corrupt_images_fail_by_policy(tmp_path):
  root, truncated, _, _ = _corrupt_market(tmp_path)
  data = readers.load_dataset("market1501", str(root))
  with pytest.raises(validate.DataError, match="3 unreadable or corrupt") as e:
    validate.clean(data, on_bad_image="fail")
  assert str(truncated) in str(e.value)
  with pytest.raises(ValueError, match="on_bad_image"):
    validate.clean(data, on_bad_image="ignore")


def test_empty_splits_are_errors(tmp_path):
  root = fixtures_layouts.make_market1501(tmp_path)
  for path in (root / "query").iterdir():
    path.unlink()
  data = readers.load_dataset("market1501", str(root))
  assert validate.validate(data).empty_splits == ["standard_query"]
  with pytest.raises(validate.DataError, match="empty splits: standard_query"):
    validate.clean(data)


def test_a_split_emptied_by_bad_images_is_an_error(tmp_path):
  root = fixtures_layouts.make_dukemtmc(tmp_path)
  (root / "query" / "0002_c1_f0044158.jpg").write_bytes(b"\xff\xd8\xff")
  data = readers.load_dataset("dukemtmc", str(root))
  with pytest.raises(validate.DataError, match="standard_query"):
    validate.clean(data)


def test_training_or_task_less_sets(tmp_path):
  real2 = readers.load_dataset(
      "cocas_real2", str(fixtures_layouts.make_cocas_real2(tmp_path)))
  validate.clean(real2, expect_train=False)
  assert validate.validate(real2).empty_splits == ["train"]
  synthetic = readers.load_dataset(
      "cocas_synthetic", str(fixtures_layouts.make_cocas_synthetic(tmp_path)))
  validate.clean(synthetic, expect_tasks=False)
  assert validate.validate(synthetic).empty_splits == ["tasks"]


def test_single_image_identities_are_reported(tmp_path):
  root = fixtures_layouts.make_cuhk03(tmp_path)
  detected = readers.load_dataset("cuhk03", str(root), variant="detected")
  _, report = validate.clean(detected)
  assert report.single_image_ids == [4]  # Only 0004_c1_3.png.
  assert "1 training identities with a single image" in report.summary()
  labeled = readers.load_dataset("cuhk03", str(root))
  assert not validate.validate(labeled).single_image_ids


def test_duplicates_are_reported(tmp_path):
  root = fixtures_layouts.make_msmt17(tmp_path)
  line = "0000/0000_000_01_0303morning_0015_0.jpg 0\n"
  with (root / "list_train.txt").open("a") as f:
    f.write(line)
  copy = root / "test" / "0001" / "0001_000_12_0304noon_0061_0.jpg"
  shutil.copy(root / "test" / "0001" / "0001_000_12_0304noon_0060_0.jpg", copy)
  with (root / "list_gallery.txt").open("a") as f:
    f.write(f"0001/{copy.name} 1\n")
  _, report = validate.clean(readers.load_dataset("msmt17", str(root)))
  assert report.repeated_paths == {
      "train": [str(root / "train" / line.split()[0])]}
  assert report.identical_files == [[
      str(root / "test/0001/0001_000_12_0304noon_0060_0.jpg"), str(copy)]]
  assert "lists 1 paths more than once" in report.summary()
  assert "1 groups of identical files" in report.summary()


def test_clean_fixture_passes_every_check(tmp_path):
  data = readers.load_dataset(
      "llcm", str(fixtures_layouts.make_llcm(tmp_path)))
  cleaned, report = validate.clean(data)
  assert cleaned == data
  assert (report.errors, report.warnings) == ([], [])
  assert report.num_images == 11
  assert validate.validate(data, check_images=False).num_images == 0


def test_inspect_image(tmp_path):
  path = fixtures_layouts.write_image(tmp_path / "a.png")
  assert validate.inspect_image(str(path)) == (
      hashlib.sha1(path.read_bytes()).hexdigest(), "")
  assert validate.inspect_image(str(tmp_path / "b.png"))[1].startswith(
      "unreadable:")


def test_cli_prints_report(tmp_path, capsys):
  root = fixtures_layouts.make_regdb(tmp_path)
  assert validate.main(["regdb", "--root", str(root),
                        "--option", "trial=2"]) == 0
  out = capsys.readouterr().out
  assert "regdb: 9 images checked" in out
  assert "regdb_v2i: protocol v2i, 2 image queries, 2 gallery images" in out
  (root / "Visible/1/female_front_v_00001_1.bmp").write_bytes(b"BM")
  assert validate.main(["regdb", "--root", str(root)]) == 1
  assert "female_front_v_00001_1.bmp (corrupt:" in capsys.readouterr().out
  assert validate.main(["regdb", "--root", str(tmp_path / "absent")]) == 1
  assert "RegDB (trial 1): root" in capsys.readouterr().err
