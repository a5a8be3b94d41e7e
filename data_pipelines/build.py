"""Writes a dataset as a tfds dataset of array_record files; no TensorFlow.

  python -m data_pipelines.build market1501 --root /data/Market-1501 \\
      --out /data/tfds [--option trial=2] [--on_bad_image fail]

The dataset is read, cleaned (`validate.clean`) and written to
<out>/jreid/<config>/1.0.0/, <config> being the dataset name plus its
options. Each example holds a record's fields and its image (and template)
as the encoded file bytes. Splits: 'train', '<task>_query', '<task>_gallery';
the metadata names each task's protocol and query kind. grain reads a split
through `tfds.data_source` (see `data_source`) and `example_to_record`.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
import typing
from typing import Any, Sequence

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import validate
from data_pipelines.readers import common
from data_pipelines.readers import registry
from data_pipelines.records import Record, ReIDData

BUILDER_NAME = "jreid"
_NOT_IN_CONFIG_NAME = re.compile(r"[^\w.+]+")
_FIELD_TYPES = typing.get_type_hints(Record)


def _feature(hint: Any) -> Any:
  if hint is int:
    return np.int64
  if hint is str:
    return tfds.features.Text()
  if hint == tuple[str, ...]:
    return tfds.features.Sequence(tfds.features.Text())
  raise TypeError(f"no tfds feature for a Record field of type {hint}")


def features() -> tfds.features.FeaturesDict:
  """Every Record field, plus the encoded image and template files."""
  encoded = tfds.features.Tensor(shape=(), dtype=np.object_)
  return tfds.features.FeaturesDict({
      "image": encoded, "template_image": encoded,
      **{name: _feature(hint) for name, hint in _FIELD_TYPES.items()}})


def _file_bytes(path: str) -> bytes:
  return pathlib.Path(path).read_bytes() if path else b""


def record_to_example(record: Record) -> dict[str, Any]:
  """A record's fields with its image and template files' bytes."""
  return {**dataclasses.asdict(record),
          "image": _file_bytes(record.path),
          "template_image": _file_bytes(record.template)}


def _decode(value: Any) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def example_to_record(example: dict[str, Any]) -> Record:
  """The Record an example read back through `tfds.data_source` holds."""
  fields = {}
  for name, hint in _FIELD_TYPES.items():
    value = example[name]
    if hint is int:
      fields[name] = int(value)
    elif hint is str:
      fields[name] = _decode(value)
    else:
      fields[name] = tuple(_decode(v) for v in value)
  return Record(**fields)


def config_name(name: str, options: dict[str, Any]) -> str:
  """'<name>' or '<name>-<key>_<value>-...' for the reader options."""
  parts = [name]
  for key, value in sorted(options.items()):
    parts.append(f"{key}_{_NOT_IN_CONFIG_NAME.sub('.', str(value)).strip('.')}")
  return "-".join(parts)


class ReIDBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes the splits of one ReIDData; one builder config per dataset."""

  name = BUILDER_NAME
  # tfds looks beside a builder's code for download checksums; nothing is
  # downloaded, and that look-up needs importlib_resources on Python >= 3.9.
  code_path = None
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Records and encoded images of a ReID dataset."}

  def __init__(self, data: ReIDData, config: str, **kwargs):
    self._data = data
    super().__init__(config=tfds.core.BuilderConfig(name=config), **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    tasks = {key: {"name": t.name, "protocol": t.protocol,
                   "query_kind": t.query_kind}
             for key, t in self._data.tasks.items()}
    return tfds.core.DatasetInfo(
        builder=self, description=f"The {self._data.name} ReID dataset.",
        features=features(), disable_shuffling=True,
        metadata=tfds.core.MetadataDict(dataset=self._data.name, tasks=tasks))

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is local.
    return {name: self._generate_examples(records)
            for name, records in validate.named_splits(self._data).items()
            if records}

  def _generate_examples(self, records: Sequence[Record]):
    for index, record in enumerate(records):
      yield index, record_to_example(record)


def build(name: str, root: str, out: str, on_bad_image: str = "skip",
          **options) -> ReIDBuilder:
  """Reads, cleans and writes dataset `name`; returns the prepared builder."""
  spec = registry.get_spec(name)
  data, _ = validate.clean(spec.read(root, **options), on_bad_image,
                           expect_train=spec.has_train,
                           expect_tasks=spec.has_tasks)
  builder = ReIDBuilder(data, config_name(name, options), data_dir=out,
                        file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS))
  return builder


def data_source(name: str, out: str, **options):
  """The built splits of dataset `name`: split -> grain-ready data source."""
  return tfds.data_source(f"{BUILDER_NAME}/{config_name(name, options)}",
                          data_dir=out)


def main(argv: Sequence[str] | None = None) -> int:
  """The command line: builds one dataset, prints its splits."""
  parser = argparse.ArgumentParser(
      prog="python -m data_pipelines.build", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("name", choices=registry.list_datasets())
  parser.add_argument("--root", required=True, help="the dataset folder")
  parser.add_argument("--out", required=True, help="the tfds data_dir")
  parser.add_argument("--option", action="append", default=[],
                      metavar="KEY=VALUE", help="a reader option, e.g. trial=2")
  parser.add_argument("--on_bad_image", choices=validate.BAD_IMAGE_POLICIES,
                      default="skip")
  args = parser.parse_args(argv)
  try:
    builder = build(args.name, args.root, args.out, args.on_bad_image,
                    **registry.parse_options(args.option))
  except (common.DatasetNotFoundError, validate.DataError) as e:
    print(e, file=sys.stderr)
    return 1
  print(f"wrote {builder.data_dir}")
  for split, info in builder.info.splits.items():
    print(f"  {split}: {info.num_examples} examples")
  return 0


if __name__ == "__main__":
  sys.exit(main())
