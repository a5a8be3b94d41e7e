"""The per-row companion hook of the training pipelines (pipeline.train_dataset, mixing.mixed_dataset)."""

import pickle

import numpy as np
import pytest

from data_pipelines import mixing, pipeline
from data_pipelines.records import Record


class _Echo:
  """A companion that shows what it was given: the record index, its pid, and a draw from its rng."""

  def __call__(self, record_index: int, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"echo": np.array([record_index, record.pid, rng.integers(1 << 30)], np.int64),
            "patch": np.full((2, 3, 3), record.pid % 256, np.uint8)}


def _spec(seed=3):
  return pipeline.TrainBatchSpec(image_size=(16, 8), num_ids=3, num_instances=2, seed=seed)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_companions_are_stacked_per_row_for_the_row_record(tiny_records):
  batch = next(iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo())))
  assert batch["echo"].shape == (6, 3) and batch["patch"].shape == (6, 2, 3, 3) and batch["patch"].dtype == np.uint8
  np.testing.assert_array_equal(batch["echo"][:, 0], batch["index"])
  np.testing.assert_array_equal(batch["echo"][:, 1], [tiny_records[i].pid for i in batch["index"]])
  assert len(set(batch["echo"][:, 2])) == 6  # every row draws from its own generator


def test_companions_leave_images_alone_and_are_deterministic(tiny_records):
  plain = _take(iter(pipeline.train_dataset(tiny_records, _spec())), 2)
  first = _take(iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo())), 2)
  again = _take(iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo())), 2)
  for a, b, c in zip(plain, first, again):
    np.testing.assert_array_equal(a["image"], b["image"])
    assert set(b) == set(a) | {"echo", "patch"}
    for key in b:
      np.testing.assert_array_equal(b[key], c[key])


def test_companions_resume_exactly(tiny_records):
  straight = _take(iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo())), 4)
  iterator = iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo()))
  _take(iterator, 2)
  state = iterator.get_state()
  resumed = iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo()))
  resumed.set_state(state)
  for expected, got in zip(straight[2:], _take(resumed, 2)):
    np.testing.assert_array_equal(expected["echo"], got["echo"])


def test_companion_rows_do_not_depend_on_the_process_split(tiny_records):
  whole = next(iter(pipeline.train_dataset(tiny_records, _spec(), companions=_Echo())))
  halves = [next(iter(pipeline.train_dataset(
      tiny_records, pipeline.TrainBatchSpec(image_size=(16, 8), num_ids=3, num_instances=2, seed=3, process_index=p,
                                            process_count=2), companions=_Echo())))["echo"] for p in range(2)]
  np.testing.assert_array_equal(whole["echo"], np.concatenate(halves))


def test_mixed_stream_carries_every_task_companions(tiny_records):
  tasks = [mixing.MixTask("a", tiny_records[:9], 1.0, _spec(), _Echo()),
           mixing.MixTask("b", tiny_records[9:], 1.0, _spec(seed=4), _Echo())]
  for mode in mixing.MIX_MODES:
    batch = next(iter(mixing.mixed_dataset(tasks, mode, seed=1)))
    assert batch["echo"].shape == (6, 3)
    data = [tasks[t].data for t in batch["task"]]
    np.testing.assert_array_equal(batch["echo"][:, 1], [d[i].pid for d, i in zip(data, batch["index"])])


def test_mixing_needs_companions_on_every_task_or_none(tiny_records):
  tasks = [mixing.MixTask("a", tiny_records[:9], 1.0, _spec(), _Echo()),
           mixing.MixTask("b", tiny_records[9:], 1.0, _spec())]
  with pytest.raises(ValueError, match="not every task"):
    mixing.mixed_dataset(tasks)


def test_loaders_with_companions_pickle(tiny_records):
  load = pipeline._LoadTrainBatch(pipeline.TaskRows(tiny_records, _spec(), companions=_Echo()))
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(load))(5)["echo"], load(5)["echo"])
