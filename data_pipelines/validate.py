"""Bad-input checks on a dataset before any worker touches it.

`clean` decodes every image once on the host: an unreadable or corrupt image
is reported with its path and its records are dropped with a count (or the
run fails, by policy). Empty splits are errors; identities with a single
training image and duplicate files (a path listed twice in a split, or
different paths with identical bytes) are warnings.

  python -m data_pipelines.validate market1501 --root /data/Market-1501
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import hashlib
import io
import pathlib
import sys
from typing import Iterable, Sequence

from absl import logging
from PIL import Image

from data_pipelines.readers import common
from data_pipelines.readers import registry
from data_pipelines.records import EvalTask, Record, ReIDData

BAD_IMAGE_POLICIES = ("skip", "fail")
_LISTED = 20  # Paths a summary lists per problem.


class DataError(ValueError):
  """The dataset cannot be used as it is."""


@dataclasses.dataclass
class ValidationReport:
  """What the checks found.

  bad_images: path -> why it cannot be used. skipped: records dropped for them.
  empty_splits: splits with no records ('tasks' when a set has none).
  single_image_ids: dataset ids with one training image.
  repeated_paths: split -> paths it lists more than once.
  identical_files: groups of different paths with identical bytes.
  """

  dataset: str
  num_images: int = 0
  bad_images: dict[str, str] = dataclasses.field(default_factory=dict)
  skipped: int = 0
  empty_splits: list[str] = dataclasses.field(default_factory=list)
  single_image_ids: list[int] = dataclasses.field(default_factory=list)
  repeated_paths: dict[str, list[str]] = dataclasses.field(
      default_factory=dict)
  identical_files: list[list[str]] = dataclasses.field(default_factory=list)

  @property
  def errors(self) -> list[str]:
    messages = []
    if self.bad_images:
      messages.append(_bad_image_listing(self.bad_images))
    if self.empty_splits:
      messages.append(f"empty splits: {', '.join(self.empty_splits)}")
    return messages

  @property
  def warnings(self) -> list[str]:
    messages = []
    if self.single_image_ids:
      messages.append(_listing(
          f"{len(self.single_image_ids)} training identities with a single "
          "image", [str(i) for i in self.single_image_ids]))
    for split, paths in sorted(self.repeated_paths.items()):
      messages.append(_listing(
          f"split {split} lists {len(paths)} paths more than once", paths))
    if self.identical_files:
      messages.append(_listing(
          f"{len(self.identical_files)} groups of identical files",
          [" = ".join(group) for group in self.identical_files]))
    return messages

  def summary(self) -> str:
    lines = [f"{self.dataset}: {self.num_images} images checked"]
    if self.skipped:
      lines.append(f"skipped {self.skipped} records with bad images")
    lines += [f"error: {m}" for m in self.errors]
    lines += [f"warning: {m}" for m in self.warnings]
    return "\n".join(lines)


def _listing(headline: str, items: Sequence[str]) -> str:
  shown = [f"\n  {item}" for item in items[:_LISTED]]
  more = (f"\n  ... and {len(items) - _LISTED} more"
          if len(items) > _LISTED else "")
  return headline + ":" + "".join(shown) + more


def _bad_image_listing(bad_images: dict[str, str]) -> str:
  return _listing(f"{len(bad_images)} unreadable or corrupt images",
                  [f"{p} ({why})" for p, why in sorted(bad_images.items())])


def named_splits(data: ReIDData) -> dict[str, Sequence[Record]]:
  """'train', then '<task>_query' and '<task>_gallery' for every task."""
  splits = {"train": data.train}
  for key, task in data.tasks.items():
    splits[f"{key}_query"] = task.query
    splits[f"{key}_gallery"] = task.gallery
  return splits


def inspect_image(path: str) -> tuple[str, str]:
  """Returns (sha1 of the file, '') or ('', why it cannot be used)."""
  try:
    content = pathlib.Path(path).read_bytes()
  except OSError as e:
    return "", f"unreadable: {e.strerror or e}"
  try:
    with Image.open(io.BytesIO(content)) as image:
      image.load()
  except Exception as e:  # pylint: disable=broad-except
    # PIL signals corrupt data with many exception types.
    return "", f"corrupt: {e}"
  return hashlib.sha1(content).hexdigest(), ""


def _image_paths(records: Iterable[Record]) -> set[str]:
  return {p for r in records for p in (r.path, r.template) if p}


def _empty_splits(data: ReIDData, expect_train: bool,
                  expect_tasks: bool) -> list[str]:
  empty = [name for name, records in named_splits(data).items()
           if not records and (name != "train" or expect_train)]
  if expect_tasks and not data.tasks:
    empty.append("tasks")
  return empty


def validate(data: ReIDData, check_images: bool = True,
             expect_train: bool = True, expect_tasks: bool = True,
             workers: int = 8) -> ValidationReport:
  """Runs every check on `data` and reports what it found."""
  splits = named_splits(data)
  report = ValidationReport(
      dataset=data.name,
      empty_splits=_empty_splits(data, expect_train, expect_tasks))
  counts = collections.Counter(r.pid for r in data.train)
  report.single_image_ids = sorted(
      r.orig_pid for r in data.train if counts[r.pid] == 1)
  for name, records in splits.items():
    listed = collections.Counter(r.path for r in records if r.path)
    repeated = sorted(p for p, n in listed.items() if n > 1)
    if repeated:
      report.repeated_paths[name] = repeated
  if check_images:
    paths = sorted(_image_paths(r for s in splits.values() for r in s))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      results = list(pool.map(inspect_image, paths))
    by_digest = collections.defaultdict(list)
    for path, (digest, problem) in zip(paths, results):
      if problem:
        report.bad_images[path] = problem
      else:
        by_digest[digest].append(path)
    report.num_images = len(paths)
    report.identical_files = [g for g in by_digest.values() if len(g) > 1]
  return report


def drop_images(data: ReIDData, bad: Iterable[str]) -> ReIDData:
  """Removes records whose image or template is in `bad`; relabels train."""
  bad = set(bad)

  def keep(records):
    return [r for r in records if not _image_paths([r]) & bad]

  tasks = {key: dataclasses.replace(task, query=tuple(keep(task.query)),
                                    gallery=tuple(keep(task.gallery)))
           for key, task in data.tasks.items()}
  return dataclasses.replace(data, train=common.relabel(keep(data.train)),
                             tasks=tasks)


def _num_records(data: ReIDData) -> int:
  return sum(len(s) for s in named_splits(data).values())


def clean(data: ReIDData, on_bad_image: str = "skip",
          check_images: bool = True, expect_train: bool = True,
          expect_tasks: bool = True) -> tuple[ReIDData, ValidationReport]:
  """Validates `data` and drops records with bad images (or fails).

  Args:
    data: the dataset as a reader returned it.
    on_bad_image: 'skip' drops records with bad images, 'fail' raises.
    check_images: decode every image (off: only the record-level checks).
    expect_train: whether an empty training split is an error.
    expect_tasks: whether a set without evaluation tasks is an error.

  Returns:
    The cleaned dataset and the report; warnings are logged.

  Raises:
    DataError: bad images under 'fail', or an empty split.
  """
  if on_bad_image not in BAD_IMAGE_POLICIES:
    raise ValueError(f"on_bad_image must be one of {BAD_IMAGE_POLICIES}, "
                     f"got {on_bad_image!r}")
  report = validate(data, check_images, expect_train, expect_tasks)
  if report.bad_images and on_bad_image == "fail":
    raise DataError(report.summary())
  if report.bad_images:
    cleaned = drop_images(data, report.bad_images)
    report.skipped = _num_records(data) - _num_records(cleaned)
    report.empty_splits = _empty_splits(cleaned, expect_train, expect_tasks)
    data = cleaned
    logging.warning("%s: skipped %d records; %s", data.name, report.skipped,
                    _bad_image_listing(report.bad_images))
  if report.empty_splits:
    raise DataError(report.summary())
  for message in report.warnings:
    logging.warning("%s: %s", data.name, message)
  return data, report


def _task_summary(task: EvalTask) -> str:
  """A task's protocol and sizes, in one line."""
  return (f"{task.name}: protocol {task.protocol}, {len(task.query)} "
          f"{task.query_kind} queries, {len(task.gallery)} gallery images")


def main(argv: Sequence[str] | None = None) -> int:
  """Checks a dataset on disk and prints the report; 1 when it has errors."""
  parser = argparse.ArgumentParser(
      prog="python -m data_pipelines.validate", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("name", choices=registry.list_datasets())
  parser.add_argument("--root", required=True, help="the dataset folder")
  parser.add_argument("--option", action="append", default=[],
                      metavar="KEY=VALUE", help="a reader option, e.g. trial=2")
  args = parser.parse_args(argv)
  spec = registry.get_spec(args.name)
  try:
    data = spec.read(args.root, **registry.parse_options(args.option))
  except common.DatasetNotFoundError as e:
    print(e, file=sys.stderr)
    return 1
  report = validate(data, expect_train=spec.has_train,
                    expect_tasks=spec.has_tasks)
  print(report.summary())
  print(f"train: {len(data.train)} images, {data.num_train_ids} identities")
  for task in data.tasks.values():
    print(_task_summary(task))
  return 1 if report.errors else 0


if __name__ == "__main__":
  sys.exit(main())
