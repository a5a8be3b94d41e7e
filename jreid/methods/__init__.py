"""The methods by name: `build(config, num_classes, train_records, tokenizer)` builds config.method's.

Each is a jreid.methods.base.Method (the contract is written down there),
imported when first built, so that naming one imports no other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
  from ml_collections import ConfigDict

  from data_pipelines.records import Record
  from jreid.methods.base import Method

REGISTRY = {
    "image_reid": "jreid.methods.image_reid:ImageReID",
    "unireid": "jreid.methods.unireid:UNIReID",
    "instruct": "jreid.methods.instruct.method:InstructReID",
    "unified": "jreid.methods.instruct.method:InstructReID",  # its network over nine tasks (configs/unified.py)
    "itkm": "jreid.methods.itkm.method:ITKM",
    "pretrain": "jreid.methods.pretrain:Pretrain",
}


def method_class(name: str) -> type[Method]:
  """The Method subclass registered as `name`."""
  if name not in REGISTRY:
    raise ValueError(f"unknown config.method {name!r}; known: {', '.join(sorted(REGISTRY))}")
  module, cls = REGISTRY[name].split(":")
  return getattr(importlib.import_module(module), cls)


def build(config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
          tokenizer: Any = None) -> Method:
  """The method object named by config.method (arguments: jreid.methods.base).

  An exported model's method is `build(config, num_classes, train_records=(),
  tokenizer=...)` with the export's config (jreid.methods.export): no file is read.
  """
  return method_class(config.method)(config, num_classes, train_records, tokenizer)
