"""One module per method; `build(config, num_classes, train_records)` picks it from config.method."""

from typing import Sequence

from ml_collections import ConfigDict

from data_pipelines.records import Record


def build(config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None):
  """The method object named by config.method.

  `train_records`: the training set, for methods built from it (UNIReID's
  tokenizer and sketch pairing); those read it from config.data without it.
  """
  if config.method == "image_reid":
    from jreid.methods.image_reid import ImageReID
    return ImageReID(config, num_classes)
  if config.method == "unireid":
    from jreid.methods.unireid import UNIReID
    return UNIReID(config, num_classes, train_records)
  if config.method == "instruct":
    from jreid.methods.instruct import InstructReID
    return InstructReID(config, num_classes, train_records)
  raise ValueError(f"unknown config.method {config.method!r}; known: 'image_reid', 'unireid', 'instruct'")
