"""Pretraining the towers without identity labels: image-text contrastive (CLIP) plus DINO self-distillation.

METHODS.md, 'Pretraining the towers'. One step trains on a batch of an
unlabeled corpus (data_pipelines.pretraining): 2 global and N local crops of
each image, and one caption's tokens where it has one.

  contrastive  CLIP's symmetric InfoNCE between the image tower's feature of the
               whole photo (flipped at random, no colour change: captions name
               colours) and the text tower's, over the rows with a caption,
               with a learnable logit scale;
  dino         the student (image tower + DINOHead) on every crop predicts the
               EMA teacher's centred, sharpened prototypes of the other global view.

The total is `loss.contrastive_weight * contrastive + loss.dino_weight * dino`;
an objective of weight 0 is not computed.
The teacher (image tower + head), the centre of its logits and the step count
live in the model state, so checkpoints hold them. The teacher of step s is
`ema(teacher of step s - 1, student of step s, teacher_momentum(s))`, made at
the start of the step from the parameters it trains (DINO's update after each
optimizer step, to the letter: the teacher starts as a copy of the student).
No identity label is read; the retrieval feature is the image tower's embedding.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from data_pipelines import pipeline
from data_pipelines.corpus import CorpusImage, folder_corpus, synthetic_corpus
from data_pipelines.multicrop import MultiCropConfig
from data_pipelines.pretraining import PretrainBatchSpec, pretrain_batches
from data_pipelines.records import Record
from jreid import losses
from jreid.eval.extract import extract_image_features, padded_chunks
from jreid.methods.base import Method
from jreid.methods.text import TextTokens, method_tokenizer, tokenizer_cache_dir
from jreid.methods.towers import clip_towers
from jreid.methods.unireid import SketchQueries
from jreid.models.clip import TextTransformer, VisionTransformer
from jreid.models.dino import DINOHead, encode_at_size
from jreid.models.preprocess import normalize_images
from jreid.ops import l2_normalize


def run_corpus(config: ConfigDict) -> tuple[CorpusImage, ...]:
  """The corpus of config.corpus: every image under `root` (captions from `captions`, a CUHK-PEDES-style
  JSON), else `num_ids` identities of the synthetic corpus of `seed`."""
  cfg = config.corpus
  if cfg.root:
    return folder_corpus(cfg.root, cfg.captions or None)
  return synthetic_corpus(cfg.num_ids, cfg.seed, num_workers=cfg.num_workers,
                          photos_per_outfit=cfg.photos_per_outfit, shard_size=cfg.shard_size)


class Pretrain(Method):
  """CLIP + DINO pretraining of an image and a text tower on an unlabeled corpus (`num_classes` is not used)."""

  query_kinds = ("image", "text", "sketch")
  labelled = False  # batches are corpus images, not P x K identities

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer=None):
    super().__init__(config, num_classes, train_records, tokenizer)
    if not self.for_inference and not any(image.captions for image in self.corpus):
      raise ValueError(f"no image of the corpus {config.corpus.root or 'synthetic'!r} has a caption; CLIP "
                       "pretraining and its text tower need captions: give --config.corpus.captions=JSON "
                       "(CUHK-PEDES style)")
    if self.tokenizer is None:
      self.tokenizer = method_tokenizer(config, self.corpus, tokenizer_cache_dir())
    self.vision, self.text = clip_towers(config, self.tokenizer)
    self.towers = {"vision": self.vision, "text": self.text}
    self.tokens = TextTokens(self.tokenizer, self.text.context_length)
    self.vision_net, self.text_net = VisionTransformer(self.vision), TextTransformer(self.text)
    self.head = DINOHead(**config.model.dino_head.to_dict())
    self.pretrained = self.read_pretrained({"vision": self.vision.image_size}, text=True)

  @functools.cached_property
  def corpus(self) -> tuple[CorpusImage, ...]:
    """The training corpus (none for an export)."""
    return () if self.for_inference else run_corpus(self.config)

  def crops(self) -> MultiCropConfig:
    """data.crops, the global views at the image tower's size."""
    return MultiCropConfig(**{**self.config.data.crops.to_dict(), "global_size": tuple(self.vision.image_size)})

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Random towers (or config.model.init's), head and logit scale; the teacher a copy of the student."""
    rv, rt, rh = jax.random.split(rng, 3)
    images = normalize_images(jnp.asarray(batch["image"][:2]), jnp.dtype(self.vision.dtype))
    vision = self.vision_net.init(rv, images)["params"]
    text = self.text_net.init(rt, jnp.zeros((2, self.text.context_length), jnp.int32))["params"]
    head = self.head.init(rh, jnp.zeros((2, self.vision.embed_dim), jnp.float32))["params"]
    params = self.with_pretrained({"vision": vision, "text": text, "head": head,
                                   "logit_scale": jnp.asarray(losses.INIT_LOG_SCALE, jnp.float32)})
    teacher = {"vision": params["vision"], "head": params["head"]}
    state = {"teacher": teacher, "centre": jnp.zeros((self.head.num_prototypes,), jnp.float32),
             "step": jnp.zeros((), jnp.int32)}
    return params, state

  def _prototypes(self, vision_params, head_params, views: jax.Array) -> jax.Array:
    """Head logits [V, B, K] of uint8 views [B, V, H, W, 3] of one size."""
    b, v = views.shape[:2]
    x = normalize_images(views.reshape(b * v, *views.shape[2:]), jnp.dtype(self.vision.dtype))
    embedding = encode_at_size(self.vision, vision_params, x).embedding.astype(jnp.float32)
    logits = self.head.apply({"params": head_params}, embedding)
    return logits.reshape(b, v, -1).swapaxes(0, 1)

  def loss(self, params, model_state, batch, rng):
    del rng
    cfg = self.config.loss
    step = model_state["step"]
    terms, new_state, total = {}, dict(model_state, step=step + 1), 0.0
    if cfg.dino_weight:
      dino, new_state["teacher"], new_state["centre"], dino_terms = self._dino(params, model_state, batch)
      total, terms = total + cfg.dino_weight * dino, {**terms, "dino": dino, **dino_terms}
    if cfg.contrastive_weight:
      x = normalize_images(batch["photo"], jnp.dtype(self.vision.dtype))
      images = self.vision_net.apply({"params": params["vision"]}, x).embedding.astype(jnp.float32)
      texts = self.text_net.apply({"params": params["text"]}, batch["text"]).embedding.astype(jnp.float32)
      contrastive = losses.image_text_contrastive(images, texts, params["logit_scale"],
                                                  batch["has_text"].astype(bool))
      total = total + cfg.contrastive_weight * contrastive
      terms.update(contrastive=contrastive, temperature=1 / losses.logit_scale(params["logit_scale"]))
    return total, (terms, new_state)

  def _dino(self, params, model_state, batch):
    """(DINO loss, new teacher, new centre, logged terms): the teacher is first moved towards the student."""
    cfg = self.config.loss
    step = model_state["step"]
    momentum = losses.teacher_momentum(step, self.config.train.num_steps, cfg.teacher_momentum)
    teacher = losses.ema_update(model_state["teacher"], {"vision": params["vision"], "head": params["head"]},
                                momentum)
    student = [self._prototypes(params["vision"], params["head"], batch["global"])]
    if batch["local"].shape[1]:
      student.append(self._prototypes(params["vision"], params["head"], batch["local"]))
    teacher_logits = jax.lax.stop_gradient(self._prototypes(teacher["vision"], teacher["head"], batch["global"]))
    temperature = losses.teacher_temperature(step, cfg.teacher_warmup_steps, *cfg.teacher_temperature)
    dino = losses.dino_loss(jnp.concatenate(student), teacher_logits, model_state["centre"], temperature,
                            cfg.student_temperature)
    centre = losses.update_centre(model_state["centre"], teacher_logits, cfg.centre_momentum)
    return dino, teacher, centre, {"teacher_momentum": momentum}

  def train_stream(self, spec: pipeline.TrainBatchSpec):
    """The default phase's batches: this process's rows of the corpus's multi-crop batches with caption
    tokens, data.num_ids x data.num_instances images a global batch (the spec gives the size)."""
    size = spec.num_ids * spec.num_instances
    pspec = PretrainBatchSpec(size * spec.process_count, self.crops(), spec.seed, spec.process_index,
                              spec.process_count)
    return pretrain_batches(self.corpus, pspec, self.tokens, self.config.data.num_workers)

  def encode_images(self, params, model_state, images: jax.Array) -> jax.Array:
    """L2-normalised image-tower embeddings of uint8 photos or sketches."""
    x = normalize_images(images, jnp.dtype(self.vision.dtype))
    return l2_normalize(self.vision_net.apply({"params": params["vision"]}, x).embedding)

  def encode_texts(self, params, token_ids: jax.Array) -> jax.Array:
    return l2_normalize(self.text_net.apply({"params": params["text"]}, token_ids).embedding)

  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """Zero-shot features: images and sketches through the image tower, captions[0] through the text tower."""
    self.check_query_kind(kind)
    if kind == "text":
      chunks = padded_chunks(self.tokens.batch([r.captions[0] for r in records]), batch_size)
      features = [self.compiled(self.encode_texts)(state.params, chunk) for chunk in chunks]
      return np.asarray(jax.device_get(jnp.concatenate(features)), np.float32)[:len(records)]
    encode = functools.partial(self.compiled(self.encode_images), state.params, state.model_state)
    return extract_image_features(encode, SketchQueries(records) if kind == "sketch" else records,
                                  self.vision.image_size, batch_size)

  def inference_variables(self, params, model_state):
    """The towers and the logit scale: no head, no teacher."""
    return {k: params[k] for k in ("vision", "text", "logit_scale")}, {}
