"""The method contract: what the trainer, evaluation and export ask of a method, and what every method shares.

A method is a `Method` subclass registered by name in jreid.methods, built as
`cls(config, num_classes, train_records=None, tokenizer=None)`:

  config         the run's config, or an export's (config.model.towers, jreid.methods.export): then the
                 method is an encoder that reads no file;
  num_classes    the training identities (the identity classifiers' size);
  train_records  the training set; None: read from config.data when first needed; (): none (inference);
  tokenizer      the text tokenizer to use instead of the one the run's files give.

It provides:

  query_kinds    the query kinds `encode_records` accepts ('image' also encodes galleries);
  needs_captions whether it trains only on captioned records, and
  labelled       whether its P x K batches sample the data's identities (not pseudo labels): both checked
                 against the data before training (jreid.validate_run);
  towers         tower name -> the VisionConfig, TextConfig or BertConfig it built, taken from
                 `exported_towers(config)` when that is not None (what an export keeps);
  tokenizer      its text tokenizer, or None;
  fit_to_data(config, name, records): (a classmethod, before construction) narrows the config to what the
                 training records of dataset `name` can train, saying what it drops; the default keeps all;
  init(rng, batch) -> (params, model_state), traceable: files are read at construction;
  phases(spec, params) -> [Phase]: its training (jreid.train.phase); the default is one phase of
                 `loss` over `train_stream(spec)`, config.optim over config.train.num_steps;
  loss(params, model_state, batch, rng) -> (loss, (terms, model_state)): the default phase's step;
  train_stream(spec): the default phase's batches, P x K of the training set (a method with other rows,
                 companions or a mix of tasks gives its own);
  encode_images(params, model_state, images) -> L2-normalised features [B, D] of plain uint8 images;
  encode_records(state, records, kind, batch_size) -> float32 features [N, D] of evaluation records;
  inference_variables(params, model_state) -> what an export keeps of them (default: all).
"""

from __future__ import annotations

import abc
import functools
from typing import Any, Callable, Hashable, Mapping, Sequence

import grain
import jax
import numpy as np
from ml_collections import ConfigDict

from data_pipelines import pipeline
from data_pipelines.datasets import run_training_records
from data_pipelines.records import Record
from jreid.methods.export import exported_towers
from jreid.models.pretrained import merged_tower, pretrained_towers
from jreid.train.optimizer import make_optimizer
from jreid.train.phase import Phase


class Method(abc.ABC):
  """A ReID method: its model's init and loss, its training phases, and encoding for evaluation and search."""

  query_kinds: tuple[str, ...] = ("image",)
  needs_captions: bool = False
  labelled: bool = True

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer: Any = None):
    del num_classes  # each method's network takes it
    self.config = config
    self.tokenizer = tokenizer
    self.towers: dict[str, Any] = {}
    self.pretrained: dict[str, Any] = {}  # tower name -> host arrays that replace its initial values
    self._records = None if train_records is None else tuple(train_records)
    self._compiled: dict[Callable, Callable] = {}

  @property
  def for_inference(self) -> bool:
    """Built from an export's config: an encoder only."""
    return exported_towers(self.config) is not None

  @functools.cached_property
  def train_set(self) -> tuple[Record, ...]:
    """The training records: those given, else the run's (config.data, read once), none for an export."""
    if self._records is not None:
      return self._records
    return () if self.for_inference else tuple(run_training_records(self.config))

  @classmethod
  def fit_to_data(cls, config: ConfigDict, name: str, records: Sequence[Record]) -> None:
    """Narrows `config` to what `records` (dataset `name`'s training set) can train; the default keeps all."""
    del config, name, records

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: dict) -> tuple[Any, Any]:
    """(params, model_state) of a fresh model; batch['image'] gives the input shape."""

  def loss(self, params, model_state, batch: dict, rng: jax.Array):
    """(loss, (terms, new model_state)) of a batch: the default phase's step."""
    raise NotImplementedError(f"{type(self).__name__} trains by its own phases and has no single loss")

  # step_variant(host batch) -> hashable: what parts of the model the batch uses, passed to `loss` as its
  # keyword `variant` (Phase.variant) when config.train.step_variants; None: one step for every batch.
  step_variant: Callable[[dict], Hashable] | None = None

  def phases(self, spec: pipeline.TrainBatchSpec, params: Any) -> list[Phase]:
    """One phase: `loss` over `train_stream(spec)` for config.train.num_steps steps of config.optim."""
    steps = self.config.train.num_steps
    tx, schedule = make_optimizer(self.config.optim, params, steps)
    return [Phase("train", 0, steps, self.loss, tx, schedule, lambda state: iter(self.train_stream(spec)),
                  variant=self.step_variant if self.config.train.get("step_variants", False) else None)]

  def train_stream(self, spec: pipeline.TrainBatchSpec) -> grain.IterDataset:
    """The checkpointable stream of training batches: P x K of the training set."""
    return pipeline.train_dataset(self.train_set, spec, num_workers=self.config.data.num_workers)

  @abc.abstractmethod
  def encode_images(self, params, model_state, images: jax.Array) -> jax.Array:
    """L2-normalised features [B, D] of uint8 images [B, H, W, 3] without any instruction (jit-able)."""

  @abc.abstractmethod
  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """float32 features [N, D] of evaluation records as queries of `kind` ('image' for galleries)."""

  def inference_variables(self, params, model_state) -> tuple[Any, Any]:
    """What an export keeps of the training variables: all of them."""
    return params, model_state

  def check_query_kind(self, kind: str) -> None:
    if kind not in self.query_kinds:
      raise ValueError(f"{self.config.method} cannot encode {kind!r} queries; it encodes {self.query_kinds}")

  def compiled(self, fn: Callable) -> Callable:
    """jax.jit(fn), compiled once for this method object (fn, e.g. a bound method, is the key)."""
    if fn not in self._compiled:
      self._compiled[fn] = jax.jit(fn)
    return self._compiled[fn]

  def read_pretrained(self, image_sizes: Mapping[str, tuple[int, int]], text: bool = False) -> dict[str, Any]:
    """Host copies of config.model.init's towers ({} without one): its image tower under each name of
    `image_sizes` at that size and, with `text`, its text tower. Read here, at construction: init is traced."""
    if not self.config.model.init:
      return {}
    return pretrained_towers(self.config.model.init, image_sizes, text=text)

  def with_pretrained(self, params: dict, own: tuple[str, ...] = ()) -> dict:
    """params with each tower of `self.pretrained` in place of its initial values (`own`: parameter names the
    pretrained towers lack, which keep theirs)."""
    merged = {name: merged_tower(loaded, params[name], name, own) for name, loaded in self.pretrained.items()}
    return {**params, **merged}
