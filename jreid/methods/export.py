"""What an inference export keeps of a method, so that it is rebuilt without the files its run read.

Built for training, a method reads files its config names: a converted CLIP
(config.model.init), a converted BERT (config.model.instruction.bert) and the
training data (config.data: tokenizer captions, identities, sketch pairs). An
export (jreid.inference) keeps instead what those files decided:

  - `inference_config(method)`: the run's config with the architecture of
    every tower the method built in config.model.towers, and no file named;
  - the method's `tokenizer`, if it has one, saved beside it.

Its method is then `methods.build(config, num_classes, train_records=(),
tokenizer=tokenizer)` with that config: nothing is read, and the exported
parameters replace the initial ones.

A method (jreid.methods.base.Method) takes part through its `towers` (tower
name -> the VisionConfig, TextConfig or BertConfig it built), tower configs
taken from `exported_towers(config)` when that is not None, and a constructor
that reads no training data given `train_records=()` and uses a given
`tokenizer`. A method that reads another file at construction adds the config
field naming it to FILE_FIELDS. A method whose training variables hold more
than encoding needs (ITKM: prompts, cluster memories, pseudo labels) says so
in `inference_variables(params, model_state)`, and its method built from an
export's config initialises just those.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ml_collections import ConfigDict

TOWERS = "towers"  # the config.model section of an export's tower architectures
FILE_FIELDS = (("init",), ("instruction", "bert"))  # config.model fields naming files read at construction


def inference_config(method: Any) -> ConfigDict:
  """A copy of the method's config naming no file: its towers' architectures in config.model.towers."""
  config = ConfigDict(method.config.to_dict())
  config.model[TOWERS] = {name: dataclasses.asdict(tower) for name, tower in method.towers.items()}
  for field in FILE_FIELDS:
    _clear(config.model, field)
  return config


def _clear(node: ConfigDict, field: tuple[str, ...]) -> None:
  *parents, name = field
  for key in parents:
    node = node.get(key)
    if node is None:
      return
  if name in node:
    node[name] = ""


def exported_towers(config: ConfigDict) -> dict[str, dict[str, Any]] | None:
  """Tower name -> its config's fields, in an export's config; None in a run's config."""
  towers = config.model.get(TOWERS)
  return None if towers is None else towers.to_dict()
