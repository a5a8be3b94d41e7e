"""The tfds build CLI: array_record files that tfds.data_source reads back."""

import pathlib

import grain
import pytest

import fixtures_layouts
from data_pipelines import build
from data_pipelines import readers
from data_pipelines import validate


def _file_bytes(path):
  return pathlib.Path(path).read_bytes() if path else b""


@pytest.mark.parametrize("name", sorted(fixtures_layouts.FIXTURES))
def test_cli_writes_array_records_that_read_back(tmp_path, name, capsys):
  root = fixtures_layouts.FIXTURES[name](tmp_path / "data")
  out = tmp_path / "tfds"
  assert build.main([name, "--root", str(root), "--out", str(out)]) == 0
  assert f"wrote {out}" in capsys.readouterr().out
  assert list((out / build.BUILDER_NAME / name).glob("*/*.array_record-*"))

  data = readers.load_dataset(name, str(root))
  sources = build.data_source(name, str(out))
  splits = {k: v for k, v in validate.named_splits(data).items() if v}
  assert sorted(sources) == sorted(splits)
  for split, records in splits.items():
    examples = [sources[split][i] for i in range(len(sources[split]))]
    assert [build.example_to_record(e) for e in examples] == list(records)
    for example, record in zip(examples, records):
      assert example["image"] == _file_bytes(record.path)
      assert example["template_image"] == _file_bytes(record.template)
  metadata = next(iter(sources.values())).dataset_info.metadata
  assert metadata["dataset"] == data.name
  assert metadata["tasks"] == {
      key: {"name": t.name, "protocol": t.protocol, "query_kind": t.query_kind}
      for key, t in data.tasks.items()}


def test_grain_reads_a_built_split(tmp_path):
  root = fixtures_layouts.make_market1501(tmp_path / "data")
  build.build("market1501", str(root), str(tmp_path / "tfds"))
  source = build.data_source("market1501", str(tmp_path / "tfds"))["train"]
  records = list(grain.MapDataset.source(source).map(build.example_to_record))
  assert records == list(readers.load_dataset("market1501", str(root)).train)


def test_reader_options_get_their_own_config(tmp_path):
  root = fixtures_layouts.make_regdb(tmp_path / "data")
  out = str(tmp_path / "tfds")
  assert build.main(["regdb", "--root", str(root), "--out", out,
                     "--option", "trial=2"]) == 0
  build.build("regdb", str(root), out)  # Trial 1.
  assert (tmp_path / "tfds/jreid/regdb-trial_2").is_dir()
  trial2 = build.data_source("regdb", out, trial=2)["v2i_query"]
  trial1 = build.data_source("regdb", out)["v2i_query"]
  assert {build.example_to_record(e).orig_pid for e in trial2} == {1}
  assert {build.example_to_record(e).orig_pid for e in trial1} == {3}
  assert build.config_name("mlr_cuhk03", {"scales": (2, 3)}) == (
      "mlr_cuhk03-scales_2.3")


def test_rebuilding_replaces_the_dataset(tmp_path):
  root = fixtures_layouts.make_dukemtmc(tmp_path / "data")
  out = str(tmp_path / "tfds")
  build.build("dukemtmc", str(root), out)
  fixtures_layouts.write_image(root / "bounding_box_train" /
                               "0009_c4_f0000999.jpg")
  build.build("dukemtmc", str(root), out)
  assert len(build.data_source("dukemtmc", out)["train"]) == 5


def test_cli_missing_root_names_dataset(tmp_path, capsys):
  assert build.main(["ltcc", "--root", str(tmp_path / "absent"),
                     "--out", str(tmp_path / "tfds")]) == 1
  error = capsys.readouterr().err
  assert "LTCC: root" in error and "LTCC_ReID/" in error


def test_cli_bad_image_policy(tmp_path, capsys):
  root = fixtures_layouts.make_market1501(tmp_path / "data")
  corrupt = root / "bounding_box_train" / "0002_c1s1_000451_03.jpg"
  corrupt.write_bytes(corrupt.read_bytes()[:40])
  out = str(tmp_path / "tfds")
  assert build.main(["market1501", "--root", str(root), "--out", out,
                     "--on_bad_image", "fail"]) == 1
  assert str(corrupt) in capsys.readouterr().err
  assert build.main(["market1501", "--root", str(root), "--out", out]) == 0
  train = [build.example_to_record(e)
           for e in build.data_source("market1501", out)["train"]]
  assert len(train) == 5 and str(corrupt) not in {r.path for r in train}
