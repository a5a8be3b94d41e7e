"""Each reader on a fixture in its dataset's true layout.

Expected values are read off the fixture's file names by hand.
"""

import pathlib

import pytest

import fixtures_layouts
from data_pipelines import readers
from data_pipelines.readers import registry


def _by_path(records, root):
  """Records keyed by their path relative to the dataset root."""
  return {pathlib.Path(r.path).relative_to(root).as_posix(): r
          for r in records}


def test_registry_lists_every_dataset():
  assert readers.list_datasets() == sorted(fixtures_layouts.FIXTURES)
  with pytest.raises(KeyError, match="unknown dataset 'market'"):
    readers.get_reader("market")


def test_market1501(tmp_path):
  root = fixtures_layouts.make_market1501(tmp_path)
  data = readers.load_dataset("market1501", str(tmp_path))  # The parent.
  train = _by_path(data.train, root / "bounding_box_train")
  assert len(train) == 6 and data.num_train_ids == 3
  # Ids 0002, 0007, 0010 -> 0, 1, 2; camera c6 -> 5.
  record = train["0007_c6s3_094867_01.jpg"]
  assert (record.pid, record.camid, record.orig_pid) == (1, 5, 7)
  assert train["0010_c1s1_002301_02.jpg"].pid == 2
  task = data.tasks["standard"]
  assert task.protocol == "standard" and task.query_kind == "image"
  assert len(task.query) == 2
  gallery = _by_path(task.gallery, root / "bounding_box_test")
  # The two -1 junk images are dropped; the 0000 distractor matches nothing.
  assert sorted(gallery) == ["0000_c5s3_001234_01.jpg",
                             "0001_c1s1_001101_02.jpg",
                             "0001_c2s1_000301_01.jpg",
                             "0003_c4s2_012345_01.jpg"]
  distractor = gallery["0000_c5s3_001234_01.jpg"]
  assert (distractor.pid, distractor.camid, distractor.orig_pid) == (-1, 4, 0)
  assert {q.pid for q in task.query} == {1, 3}


def test_dukemtmc(tmp_path):
  root = fixtures_layouts.make_dukemtmc(tmp_path)
  data = readers.load_dataset("dukemtmc", str(root))
  train = _by_path(data.train, root / "bounding_box_train")
  assert (train["0005_c8_f0123456.jpg"].pid,
          train["0005_c8_f0123456.jpg"].camid) == (1, 7)
  task = data.tasks["standard"]
  gallery = _by_path(task.gallery, root / "bounding_box_test")
  assert (gallery["0008_c3_f0000123.jpg"].pid,
          gallery["0008_c3_f0000123.jpg"].camid) == (8, 2)
  assert [(q.pid, q.camid) for q in task.query] == [(2, 0)]


@pytest.mark.parametrize("version,train_dir", [("V1", "train"),
                                               ("V2", "mask_train_v2")])
def test_msmt17(tmp_path, version, train_dir):
  root = fixtures_layouts.make_msmt17(tmp_path, version)
  data = readers.load_dataset("msmt17", str(tmp_path))
  train = _by_path(data.train, root / train_dir)
  assert len(train) == 6 and data.num_train_ids == 3  # list_train + list_val.
  record = train["0001/0001_000_15_0304afternoon_0200_0.jpg"]
  assert (record.pid, record.camid) == (1, 14)
  assert train["0002/0002_001_08_0303noon_0310_1.jpg"].camid == 7
  task = data.tasks["standard"]
  assert [(q.pid, q.camid) for q in task.query] == [(0, 1)]
  assert [(g.pid, g.camid) for g in task.gallery] == [(0, 8), (1, 11)]
  without_val = readers.load_dataset("msmt17", str(root), with_val=False)
  assert len(without_val.train) == 4 and without_val.num_train_ids == 2


@pytest.mark.parametrize("variant,num_train", [("labeled", 4),
                                               ("detected", 3)])
def test_cuhk03_new_protocol(tmp_path, variant, num_train):
  root = fixtures_layouts.make_cuhk03(tmp_path)
  data = readers.load_dataset("cuhk03", str(root), variant=variant)
  assert data.name == f"cuhk03_{variant}"
  train = _by_path(data.train, root / variant / "bounding_box_train")
  assert len(train) == num_train
  assert (train["0001_c2_6.png"].pid, train["0001_c2_6.png"].camid) == (0, 1)
  task = data.tasks["standard"]
  assert [(q.pid, q.camid) for q in task.query] == [(2, 0), (2, 1)]
  assert len(task.gallery) == 4
  with pytest.raises(ValueError, match="labeled"):
    readers.load_dataset("cuhk03", str(root), variant="manual")


def test_reader_options_from_the_training_config(tmp_path):
  """data.options of a training config reach the reader; an option it lacks, or options of the synthetic set,
  are one clear error."""
  from configs import image_reid
  from data_pipelines.datasets import load_data
  root = fixtures_layouts.make_cuhk03(tmp_path)
  data = image_reid.get_config("smoke").data
  data.update(name="cuhk03", root=str(root), options=("variant=detected",))
  assert load_data(data).name == "cuhk03_detected" and len(load_data(data).train) == 3
  data.options = ("split=2",)
  with pytest.raises(ValueError, match="cuhk03 has no reader option split; its options: variant"):
    load_data(data)
  data.update(name="synthetic", root="", options=("variant=detected",))
  with pytest.raises(ValueError, match="synthetic set has data.size"):
    load_data(data)


def test_mlr_cuhk03_downsamples_one_camera(tmp_path):
  root = fixtures_layouts.make_cuhk03(tmp_path)
  data = readers.load_dataset("mlr_cuhk03", str(root))  # lr_camera=1: c2.
  train = _by_path(data.train, root / "labeled" / "bounding_box_train")
  for name in ("0001_c2_6.png", "0004_c2_7.png"):
    assert train[name].scale in (2, 3, 4)
    assert train[name].source == train[name].path
  assert train["0001_c1_1.png"].scale == 1
  task = data.tasks["cross_resolution"]
  assert task.protocol == "cross_resolution"
  query = {pathlib.Path(r.path).name for r in task.query}
  gallery = {pathlib.Path(r.path).name for r in task.gallery}
  assert query == {"0002_c2_6.png", "0002_c2_7.png", "0003_c2_8.png"}
  assert gallery == {"0002_c1_1.png", "0002_c1_2.png", "0003_c1_1.png"}
  assert all(r.scale in (2, 3, 4) for r in task.query)
  assert all(r.scale == 1 for r in task.gallery)
  again = readers.load_dataset("mlr_cuhk03", str(root))
  assert again == data  # Seeded.


def test_sysu_mm01(tmp_path):
  root = fixtures_layouts.make_sysu_mm01(tmp_path)
  data = readers.load_dataset("sysu_mm01", str(root))
  # Train ids 1, 2 (train_id.txt) and 3 (val_id.txt): 3 + 3 + 2 images.
  train = _by_path(data.train, root)
  assert len(train) == 8 and data.num_train_ids == 3
  record = train["cam6/0002/0002.jpg"]
  assert (record.pid, record.camid, record.modality) == (1, 5, "ir")
  assert train["cam4/0003/0001.jpg"].modality == "rgb"
  assert sum(r.modality == "ir" for r in data.train) == 4
  all_search, indoor = data.tasks["sysu_all"], data.tasks["sysu_indoor"]
  assert (all_search.protocol, indoor.protocol) == ("sysu_all", "sysu_indoor")
  # Queries: every infrared image of test ids 4 and 5.
  assert sorted(_by_path(all_search.query, root)) == [
      "cam3/0004/0001.jpg", "cam3/0004/0002.jpg", "cam6/0004/0001.jpg",
      "cam6/0005/0001.jpg"]
  assert indoor.query == all_search.query
  # Every visible test image of the protocol's cameras; eval draws trials.
  assert sorted(_by_path(all_search.gallery, root)) == [
      "cam1/0004/0001.jpg", "cam1/0004/0002.jpg", "cam1/0004/0003.jpg",
      "cam2/0004/0001.jpg", "cam4/0004/0001.jpg", "cam5/0005/0001.jpg",
      "cam5/0005/0002.jpg"]
  assert sorted(_by_path(indoor.gallery, root)) == [
      "cam1/0004/0001.jpg", "cam1/0004/0002.jpg", "cam1/0004/0003.jpg",
      "cam2/0004/0001.jpg"]
  assert len(readers.load_dataset("sysu_mm01", str(root),
                                  with_val=False).train) == 6


def test_regdb_trials(tmp_path):
  root = fixtures_layouts.make_regdb(tmp_path)
  data = readers.load_dataset("regdb", str(root))
  assert len(data.train) == 6 and data.num_train_ids == 2
  train = _by_path(data.train, root)
  record = train["Thermal/2/male_back_t_00101_2.bmp"]
  assert (record.pid, record.camid, record.modality) == (1, 1, "ir")
  v2i, i2v = data.tasks["v2i"], data.tasks["i2v"]
  assert [(q.pid, q.modality, q.camid)
          for q in v2i.query] == [(3, "rgb", 0)] * 2
  assert [(g.pid, g.modality, g.camid) for g in v2i.gallery] == [(3, "ir", 1)]
  assert (i2v.query, i2v.gallery) == (v2i.gallery, v2i.query)
  trial2 = readers.load_dataset("regdb", str(root), trial=2)
  assert {q.pid for q in trial2.tasks["v2i"].query} == {1}
  assert len(trial2.tasks["v2i"].gallery) == 2
  assert {r.orig_pid for r in trial2.train} == {2, 3}


def test_llcm(tmp_path):
  root = fixtures_layouts.make_llcm(tmp_path)
  data = readers.load_dataset("llcm", str(root))
  train = _by_path(data.train, root)
  assert len(train) == 5 and data.num_train_ids == 2
  record = train["nir/0002/0002_c04_s190500_f0200_nir.jpg"]
  assert (record.pid, record.camid, record.modality) == (1, 3, "ir")
  assert train["vis/0001/0001_c02_s185600_f7100_vis.jpg"].modality == "rgb"
  v2i, i2v = data.tasks["v2i"], data.tasks["i2v"]
  assert len(v2i.query) == 3 and {q.modality for q in v2i.query} == {"rgb"}
  # One infrared image per (id, camera): cameras c06 and c09.
  assert sorted(g.camid for g in v2i.gallery) == [5, 8]
  assert len(i2v.query) == 3 and {q.modality for q in i2v.query} == {"ir"}
  assert sorted(g.camid for g in i2v.gallery) == [0, 4]
  # Camera c01 holds two images of id 3: trials draw either, seeded.
  draws = {readers.load_dataset("llcm", str(root), trial=t).tasks["i2v"]
           .gallery for t in range(10)}
  assert len(draws) == 2
  assert readers.load_dataset("llcm", str(root)) == data


def test_ltcc(tmp_path):
  root = fixtures_layouts.make_ltcc(tmp_path)
  data = readers.load_dataset("ltcc", str(root))
  train = _by_path(data.train, root / "train")
  assert len(train) == 5 and data.num_train_ids == 2
  # Outfits (1, 1), (1, 2), (5, 1) -> clothes 0, 1, 2.
  assert [train[n].clothes_id for n in ("001_1_c11_015976.png",
                                        "001_1_c5_016010.png",
                                        "001_2_c3_000123.png",
                                        "005_1_c7_002000.png")] == [0, 0, 1, 2]
  record = train["005_1_c8_002100.png"]
  assert (record.pid, record.camid, record.orig_pid) == (1, 7, 5)
  assert data.tasks["cc"].protocol == "cc"
  assert data.tasks["general"].protocol == "general"
  task = data.tasks["cc"]
  query = _by_path(task.query, root / "query")
  gallery = _by_path(task.gallery, root / "test")
  assert len(query) == 2 and len(gallery) == 4
  assert (query["012_2_c4_000300.png"].clothes_id
          == gallery["012_2_c10_000600.png"].clothes_id)
  assert (query["012_2_c4_000300.png"].clothes_id
          != gallery["012_1_c9_000500.png"].clothes_id)
  assert len({g.clothes_id for g in gallery.values()}) == 4
  assert gallery["010_2_c6_000400.png"].camid == 5


def test_prcc(tmp_path):
  root = fixtures_layouts.make_prcc(tmp_path)
  data = readers.load_dataset("prcc", str(root))
  train = _by_path(data.train, root / "rgb" / "train")
  assert len(train) == 5 and data.num_train_ids == 2  # val/ is not trained.
  a, b, c = (train[f"001/{n}"] for n in ("A_cropped_rgb001.jpg",
                                         "B_cropped_rgb010.jpg",
                                         "C_cropped_rgb100.jpg"))
  assert [r.camid for r in (a, b, c)] == [0, 1, 2]
  assert a.clothes_id == b.clothes_id != c.clothes_id
  assert len({r.clothes_id for r in data.train}) == 4
  cc, general, sc = (data.tasks[k] for k in ("cc", "general", "sc"))
  assert (cc.protocol, general.protocol, sc.protocol) == ("cc", "general",
                                                          "general")
  test = root / "rgb" / "test"
  assert sorted(_by_path(cc.query, test)) == [
      "C/004/cropped_rgb020.jpg", "C/004/cropped_rgb021.jpg",
      "C/006/cropped_rgb005.jpg"]
  assert sorted(_by_path(sc.query, test)) == ["B/004/cropped_rgb010.jpg"]
  assert len(general.query) == 4
  gallery = _by_path(cc.gallery, test)
  assert sorted(gallery) == ["A/004/cropped_rgb001.jpg",
                             "A/004/cropped_rgb002.jpg",
                             "A/006/cropped_rgb001.jpg"]
  same = _by_path(sc.query, test)["B/004/cropped_rgb010.jpg"]
  changed = _by_path(cc.query, test)["C/004/cropped_rgb020.jpg"]
  assert same.clothes_id == gallery["A/004/cropped_rgb001.jpg"].clothes_id
  assert changed.clothes_id != gallery["A/004/cropped_rgb001.jpg"].clothes_id
  assert (same.pid, same.camid, changed.camid) == (4, 1, 2)


def test_vc_clothes(tmp_path):
  root = fixtures_layouts.make_vc_clothes(tmp_path)
  data = readers.load_dataset("vc_clothes", str(root))
  train = _by_path(data.train, root / "train")
  assert len(train) == 5 and data.num_train_ids == 2
  record = train["0001-03-02-01.jpg"]
  assert (record.pid, record.camid) == (0, 2)
  assert record.clothes_id != train["0001-01-01-01.jpg"].clothes_id
  assert (train["0001-02-01-01.jpg"].clothes_id
          == train["0001-01-01-01.jpg"].clothes_id)
  assert len({r.clothes_id for r in data.train}) == 3
  general, cc, sc = (data.tasks[k] for k in ("general", "cc", "sc"))
  assert (len(general.query), len(general.gallery)) == (3, 4)
  # cc: cameras 3 and 4; sc: cameras 2 and 3.
  assert sorted(pathlib.Path(r.path).name for r in cc.query) == [
      "0100-03-01-01.jpg", "0101-04-02-01.jpg"]
  assert sorted(pathlib.Path(r.path).name for r in cc.gallery) == [
      "0100-04-02-02.jpg", "0101-03-01-02.jpg"]
  assert [pathlib.Path(r.path).name for r in sc.query] == ["0100-03-01-01.jpg"]
  assert len(sc.gallery) == 3
  assert (cc.protocol, general.protocol) == ("cc", "general")


def test_cuhk_pedes(tmp_path):
  root = fixtures_layouts.make_cuhk_pedes(tmp_path)
  data = readers.load_dataset("cuhk_pedes", str(root))
  train = _by_path(data.train, root / "imgs")
  assert len(train) == 3 and data.num_train_ids == 2  # Val is left out.
  assert train["CUHK01/0363004.png"].captions == ("A woman in a red coat.",
                                                   "She wears black boots.")
  assert train["cam_a/000_45.bmp"].pid == 0
  assert train["Market/0002_c1s1_000451_03.jpg"].pid == 1
  task = data.tasks["text"]
  assert (task.protocol, task.query_kind) == ("text", "text")
  assert [(q.path, q.pid, q.captions) for q in task.query] == [
      ("", 11004, ("A man with a backpack.",)),
      ("", 11004, ("The man carries a blue bag.",)),
      ("", 11005, ("A girl in a white dress.",))]
  assert sorted(_by_path(task.gallery, root / "imgs")) == [
      "CUHK03/1_001_1_01.png", "test_query/p10376_s14338.jpg"]


def test_icfg_pedes(tmp_path):
  root = fixtures_layouts.make_icfg_pedes(tmp_path)
  data = readers.load_dataset("icfg_pedes", str(tmp_path))
  train = _by_path(data.train, root / "imgs")
  assert train["train/0001/0001_002_04_0303noon_0120_1.jpg"].captions == (
      "A woman with a pink scarf.",)
  task = data.tasks["text"]
  assert [(q.pid, q.captions) for q in task.query] == [
      (3102, ("A person holding an umbrella.",))]
  assert [g.pid for g in task.gallery] == [3102]


def test_rstpreid(tmp_path):
  root = fixtures_layouts.make_rstpreid(tmp_path)
  data = readers.load_dataset("rstpreid", str(root))
  assert len(data.train) == 2 and data.num_train_ids == 1
  assert _by_path(data.train, root / "imgs")["0000_c5_0042.jpg"].captions == (
      "Blue clothes.", "A man walking.")
  task = data.tasks["text"]
  assert len(task.query) == 4 and {q.pid for q in task.query} == {3901}
  assert all(q.path == "" and len(q.captions) == 1 for q in task.query)
  assert sorted(_by_path(task.gallery, root / "imgs")) == [
      "3901_c14_0004.jpg", "3901_c7_0010.jpg"]


def test_cocas_real2(tmp_path):
  root = fixtures_layouts.make_cocas_real2(tmp_path)
  data = readers.load_dataset("cocas_real2", str(root))
  assert not data.train
  task = data.tasks["ctcc"]
  assert (task.protocol, task.query_kind) == ("target_clothes",
                                              "image+template")
  query = _by_path(task.query, root)
  gallery = _by_path(task.gallery, root)
  first = query["images/0101_01_c03_000010.jpg"]
  assert first.template == str(root / "templates/0101_02.jpg")
  assert first.pid == 101
  # Cameras 3, 5, 7 -> 0, 1, 2; clothes unique per (pid, clothes).
  assert first.camid == 0
  assert gallery["images/0101_02_c07_000030.jpg"].camid == 2
  # The query names its target's clothes: (101, 2) in 0101_02_c07.
  assert first.clothes_id == -1
  assert (first.target_clothes_id
          == gallery["images/0101_02_c07_000030.jpg"].clothes_id)
  assert (first.target_clothes_id
          != gallery["images/0101_01_c05_000040.jpg"].clothes_id)
  assert (query["images/0102_01_c05_000020.jpg"].target_clothes_id
          == gallery["images/0102_01_c03_000050.jpg"].clothes_id)


def test_cocas_synthetic(tmp_path):
  root = fixtures_layouts.make_cocas_synthetic(tmp_path)
  data = readers.load_dataset("cocas_synthetic", str(root))
  assert not data.tasks
  train = _by_path(data.train, root)
  record = train["GTA_v2_2/0500/0500_01_0002.jpg"]
  assert (record.pid, record.orig_pid) == (1, 500)
  assert record.template == str(root / "GTA_v2_2/templates/0500_01.jpg")
  clothes = [train[p].clothes_id for p in ("GTA_v2/0001/0001_01_0001.jpg",
                                           "GTA_v2/0001/0001_02_0002.jpg",
                                           "GTA_v2_2/0500/0500_01_0001.jpg")]
  assert clothes == [0, 1, 2]


@pytest.mark.parametrize("name", sorted(fixtures_layouts.FIXTURES))
def test_missing_root_names_dataset_and_layout(tmp_path, name):
  spec = readers.get_spec(name)
  with pytest.raises(readers.DatasetNotFoundError) as error:
    readers.load_dataset(name, str(tmp_path / "absent"))
  message = str(error.value)
  assert "does not exist" in message and str(tmp_path / "absent") in message
  assert "Expected layout:" in message and spec.layout in message


def test_incomplete_root_names_what_is_missing(tmp_path):
  root = fixtures_layouts.make_market1501(tmp_path)
  (root / "query").rename(root / "queries")
  with pytest.raises(readers.DatasetNotFoundError,
                     match=r"Market-1501: root .* lacks query\. Expected"):
    readers.load_dataset("market1501", str(root))


def test_bad_file_name_is_reported_with_its_path(tmp_path):
  root = fixtures_layouts.make_dukemtmc(tmp_path)
  fixtures_layouts.write_image(root / "query" / "person.jpg")
  with pytest.raises(ValueError, match="person.jpg"):
    readers.load_dataset("dukemtmc", str(root))


def test_malformed_list_line_is_reported_with_file_and_line(tmp_path):
  root = fixtures_layouts.make_msmt17(tmp_path)
  with (root / "list_query.txt").open("a") as f:
    f.write("0000/0000_000_02_0303morning_0037_1.jpg\n")
  with pytest.raises(ValueError, match=r"list_query.txt:2: expected 2 fields"):
    readers.load_dataset("msmt17", str(root))


def test_parse_options():
  assert registry.parse_options(["trial=2", "variant=detected",
                                 "scales=(2, 3)", "with_val=False"]) == {
                                     "trial": 2, "variant": "detected",
                                     "scales": (2, 3), "with_val": False}
  with pytest.raises(ValueError, match="key=value"):
    registry.parse_options(["trial"])
