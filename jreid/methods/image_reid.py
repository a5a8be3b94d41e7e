"""Supervised image ReID: CLIP-style ViT + BNNeck, identity and batch-hard triplet losses.

The shared baseline of every method: photo, infrared, sketch and low-resolution
images of an identity share its label, so one image tower learns them all.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from data_pipelines.records import Record
from jreid import losses
from jreid.ops import l2_normalize
from jreid.eval.extract import extract_image_features
from jreid.methods.export import exported_towers
from jreid.models.clip import VisionConfig, VisionTransformer
from jreid.models.preprocess import normalize_images
from jreid.models.pretrained import pretrained_tower_configs, pretrained_vision_params
from jreid.models.reid_head import BNNeckHead


class ImageReIDNet(nn.Module):
  """Image tower + ReID head; returns (feature before the BNNeck, identity logits)."""

  vision: VisionConfig
  num_classes: int

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    x = normalize_images(images, jnp.dtype(self.vision.dtype))
    feature = VisionTransformer(self.vision, name="vision")(x).embedding.astype(jnp.float32)
    _, logits = BNNeckHead(self.num_classes, name="head")(feature, train)
    return feature, logits


class ImageReID:
  """The method object the trainer drives: init, loss and encoding for evaluation.

  Every method provides: `query_kinds` (the query kinds it can encode),
  `init(rng, batch) -> (params, model_state)`, `loss(params, model_state,
  batch, rng) -> (loss, (terms, model_state))`, `encode_records(state,
  records, kind, batch_size) -> features` and, to be exported, `towers` (see
  jreid.methods.export).
  """

  query_kinds = ("image", "sketch", "image+instruction", "image+template")

  def __init__(self, config: ConfigDict, num_classes: int):
    self.config = config
    self.vision = self._vision_config()
    self.towers = {"vision": self.vision}
    # Read once on the host, so init stays traceable.
    self._pretrained_vision = (pretrained_vision_params(config.model.init, self.vision.image_size)
                               if config.model.init else None)
    self.net = ImageReIDNet(self.vision, num_classes)
    self._encode = None

  def _vision_config(self) -> VisionConfig:
    """An export's image tower (jreid.methods.export), else config.model.init's at the run's image size, else
    config.model.vision."""
    towers = exported_towers(self.config)
    vision = self.config.model.vision
    if towers is not None:
      return VisionConfig(**towers["vision"])
    if self.config.model.init:
      return pretrained_tower_configs(self.config.model)[0]
    return VisionConfig(**vision.to_dict())

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Random init; the image tower from config.model.init when it names a converted CLIP."""
    variables = self.net.init(rng, jnp.asarray(batch["image"][:2]), train=False)
    params = dict(variables.pop("params"))
    if self._pretrained_vision is not None:
      loaded = self._pretrained_vision
      expected = jax.tree_util.tree_map(jnp.shape, params["vision"])
      if jax.tree_util.tree_map(np.shape, loaded) != expected:
        raise ValueError(f"{self.config.model.init}: image tower parameters do not match the model built from it")
      params["vision"] = jax.tree_util.tree_map(lambda x, ref: jnp.asarray(x, ref.dtype), loaded, params["vision"])
    return params, dict(variables)

  def loss(self, params, model_state, batch, rng):
    del rng
    (feature, logits), updates = self.net.apply({"params": params, **model_state}, batch["image"], train=True,
                                                mutable=["batch_stats"])
    cfg = self.config.loss
    terms = {
        "id": losses.cross_entropy(logits, batch["label"], cfg.label_smoothing),
        "triplet": losses.batch_hard_triplet(feature, batch["label"], cfg.triplet_margin),
    }
    total = cfg.id_weight * terms["id"] + cfg.triplet_weight * terms["triplet"]
    return total, (terms, dict(updates))

  def encode_images(self, params, model_state, images: jax.Array) -> jax.Array:
    """L2-normalised retrieval features (before the BNNeck) of uint8 images."""
    feature, _ = self.net.apply({"params": params, **model_state}, images, train=False)
    return l2_normalize(feature)

  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """Features [N, D] of evaluation records of one query kind ('image' for galleries).

    Sketches go through the image tower; instructions and templates are not
    used by this method, so image+instruction queries fall back to the image.
    """
    if kind not in self.query_kinds:
      raise ValueError(f"image_reid cannot encode {kind!r} queries; it encodes {self.query_kinds}")
    if self._encode is None:
      self._encode = jax.jit(self.encode_images)
    encode = functools.partial(self._encode, state.params, state.model_state)
    return extract_image_features(encode, records, self.vision.image_size, batch_size)
