"""Random-access sources: a tfds build feeds the same batches as the records it was built from."""

import numpy as np
import pytest

import fixtures_layouts
from data_pipelines import build
from data_pipelines import pipeline
from data_pipelines import readers
from data_pipelines import sources


@pytest.fixture(scope="module")
def market(tmp_path_factory):
  """(the reader's data, the tfds data_dir) of the tiny Market-1501 fixture, built once."""
  base = tmp_path_factory.mktemp("market")
  root = fixtures_layouts.make_market1501(base / "data")
  build.build("market1501", str(root), str(base / "tfds"))
  return readers.load_dataset("market1501", str(root)), str(base / "tfds")


def test_tfds_source_holds_the_records(market):
  data, data_dir = market
  source = sources.tfds_source("market1501", data_dir)
  assert source.records == tuple(data.train)
  file_source = sources.as_source(data.train)
  for i in range(len(data.train)):
    np.testing.assert_array_equal(source.image(i, (16, 8)), file_source.image(i, (16, 8)))


def test_tfds_source_feeds_the_same_batches_as_the_records(market):
  data, data_dir = market
  spec = pipeline.TrainBatchSpec(image_size=(32, 16), num_ids=2, num_instances=2, seed=5)
  from_records = iter(pipeline.train_dataset(data.train, spec))
  # A worker process gets the source by pickling: the array_record reader must survive it.
  from_tfds = iter(pipeline.train_dataset(sources.tfds_source("market1501", data_dir), spec, num_workers=1))
  try:
    for _ in range(4):
      want, got = next(from_records), next(from_tfds)
      assert sorted(got) == sorted(want)
      for key in want:
        np.testing.assert_array_equal(got[key], want[key])
  finally:
    from_tfds.close()


def test_eval_batches_from_a_tfds_split(market):
  data, data_dir = market
  gallery = sources.tfds_source("market1501", data_dir, split="standard_gallery")
  want = list(pipeline.eval_batches(data.tasks["standard"].gallery, (16, 8), batch_size=3))
  got = list(pipeline.eval_batches(gallery, (16, 8), batch_size=3))
  assert [n for _, n in got] == [n for _, n in want] == [3, 1]
  for (a, _), (b, _) in zip(got, want):
    np.testing.assert_array_equal(a, b)


def test_missing_split_names_the_built_ones(market):
  _, data_dir = market
  with pytest.raises(KeyError, match="no split 'test'.*standard_gallery, standard_query, train"):
    sources.tfds_source("market1501", data_dir, split="test")


def test_records_become_a_file_source(tiny_records):
  source = sources.as_source(tiny_records)
  assert isinstance(source, sources.FileSource) and source.records == tuple(tiny_records)
  assert sources.as_source(source) is source
