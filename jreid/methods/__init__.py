"""One module per method; `build(config, num_classes, train_records, tokenizer)` picks it from config.method."""

from typing import Any, Sequence

from ml_collections import ConfigDict

from data_pipelines.records import Record


def build(config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
          tokenizer: Any = None):
  """The method object named by config.method.

  `train_records`: the training set, for methods built from it (UNIReID's
  tokenizer and sketch pairing); those read it from config.data without it.
  `tokenizer`: the text tokenizer to use instead of the one the run's files give.
  An exported model's method is `build(config, num_classes, train_records=(),
  tokenizer=...)` with the export's config (jreid.methods.export): no file is read.
  """
  if config.method == "image_reid":
    from jreid.methods.image_reid import ImageReID
    return ImageReID(config, num_classes)
  if config.method == "unireid":
    from jreid.methods.unireid import UNIReID
    return UNIReID(config, num_classes, train_records, tokenizer)
  if config.method == "instruct":
    from jreid.methods.instruct import InstructReID
    return InstructReID(config, num_classes, train_records, tokenizer)
  if config.method == "itkm":
    from jreid.methods.itkm import ITKM
    return ITKM(config, train_records, tokenizer)
  raise ValueError(f"unknown config.method {config.method!r}; known: 'image_reid', 'unireid', 'instruct', 'itkm'")
