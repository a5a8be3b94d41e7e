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
from jreid.eval.extract import extract_image_features
from jreid.methods.base import Method
from jreid.methods.towers import vision_tower
from jreid.models.clip import VisionConfig, VisionTransformer
from jreid.models.preprocess import normalize_images
from jreid.models.reid_head import BNNeckHead
from jreid.ops import l2_normalize


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


class ImageReID(Method):
  """One image tower trained on identities; instructions and templates are not used (image queries answer them)."""

  query_kinds = ("image", "sketch", "image+instruction", "image+template")

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer=None):
    super().__init__(config, num_classes, train_records, tokenizer)
    self.vision = vision_tower(config)
    self.towers = {"vision": self.vision}
    self.pretrained = self.read_pretrained({"vision": self.vision.image_size})
    self.net = ImageReIDNet(self.vision, num_classes)

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Random init; the image tower from config.model.init when it names a converted CLIP."""
    variables = self.net.init(rng, jnp.asarray(batch["image"][:2]), train=False)
    params = dict(variables.pop("params"))
    return self.with_pretrained(params), dict(variables)

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
    """Sketches go through the image tower; image+instruction and image+template queries use the image alone."""
    self.check_query_kind(kind)
    encode = functools.partial(self.compiled(self.encode_images), state.params, state.model_state)
    return extract_image_features(encode, records, self.vision.image_size, batch_size)
