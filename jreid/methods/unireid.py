"""UNIReID (Chen et al., CVPR 2023): text, sketch and text+sketch queries against a gallery of photos.

A dual encoder: one image tower for photos and sketches, a CLIP text tower for
descriptions; a text+sketch query is the fusion of the two features (a sum by
default). Training pairs every photo with one of its captions and a sketch of
that photo; the loss is symmetric InfoNCE for photo-text,
photo-sketch and photo-fusion, the first two weighted per sample by the
task-aware dynamic weighting, plus the alignment of the sketch->photo
similarity distribution to the text->photo one (see METHODS.md), and an
optional identity classification loss.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict
from PIL import Image

from data_pipelines import images as image_ops
from data_pipelines import pipeline
from data_pipelines.pipeline import eval_batches
from data_pipelines.records import Record
from data_pipelines.sketch import sketch as draw
from jreid import losses
from jreid.eval.extract import extract_image_features, padded_chunks
from jreid.methods.base import Method
from jreid.methods.text import TextTokens, method_tokenizer, tokenizer_cache_dir
from jreid.methods.towers import clip_towers
from jreid.models.clip import EncoderOutput, TextConfig, TextTransformer, VisionConfig, VisionTransformer
from jreid.models.preprocess import normalize_images
from jreid.models.tokenizer import Tokenizer
from jreid.ops import l2_normalize

FUSIONS = ("sum", "weighted", "cross_attention")
SKETCH_SOURCES = ("dataset", "drawn")
POSITIVES = ("instance", "identity")
# Photos are drawn as sketches at this size (that of the synthetic set's photos), then resized.
DRAW_SIZE = (256, 128)
_SKETCH_CACHE = 4096  # Drawn sketches each process keeps (at 256 x 128, 400 MiB).


@functools.lru_cache(maxsize=_SKETCH_CACHE)
def draw_sketch(photo: str, size: tuple[int, int]) -> np.ndarray:
  """The photo at path `photo` drawn as a sketch (data_pipelines.sketch), uint8 [*size, 3]; read-only.

  Drawing costs ~15 ms, so each process keeps its most recent drawings.
  """
  drawn = draw(image_ops.decode_image(photo, DRAW_SIZE))
  sketch = np.asarray(Image.fromarray(drawn).resize((size[1], size[0]), Image.BILINEAR))
  sketch.flags.writeable = False
  return sketch


class CrossAttentionFusion(nn.Module):
  """text + sketch, plus attention of that sum over both towers' tokens (a residual that starts at zero)."""

  embed_dim: int
  heads: int

  @nn.compact
  def __call__(self, text: EncoderOutput, text_valid: jax.Array, sketch: EncoderOutput) -> jax.Array:
    summed = text.embedding.astype(jnp.float32) + sketch.embedding.astype(jnp.float32)
    keys = jnp.concatenate([nn.Dense(self.embed_dim, name="text_keys")(text.tokens.astype(jnp.float32)),
                            nn.Dense(self.embed_dim, name="sketch_keys")(sketch.tokens.astype(jnp.float32))], axis=1)
    valid = jnp.concatenate([text_valid, jnp.ones(sketch.tokens.shape[:2], bool)], axis=1)
    attention = nn.MultiHeadDotProductAttention(self.heads, out_kernel_init=nn.initializers.zeros, name="attention")
    attended = attention(nn.LayerNorm(name="ln_query")(summed)[:, None], nn.LayerNorm(name="ln_keys")(keys),
                         mask=valid[:, None, None, :])
    return summed + attended[:, 0]


@flax.struct.dataclass
class Embeddings:
  """The projected features of a training batch, fp32 [B, D]; identity logits [3, B, C] (image, text, sketch)."""

  image: jax.Array
  sketch: jax.Array
  text: jax.Array
  fusion: jax.Array
  log_scale: jax.Array
  logits: jax.Array | None


class UNIReIDNet(nn.Module):
  """Image tower `vision` (photos and sketches), text tower `text`, fusion, logit scale, optional classifier."""

  vision_config: VisionConfig
  text_config: TextConfig
  fusion: str = "sum"
  fusion_heads: int = 4
  num_classes: int = 0

  def setup(self):
    if self.fusion not in FUSIONS:
      raise ValueError(f"model.fusion must be one of {FUSIONS}, got {self.fusion!r}")
    self.vision = VisionTransformer(self.vision_config)
    self.text = TextTransformer(self.text_config)
    self.logit_scale = self.param("logit_scale", nn.initializers.constant(math.log(1 / 0.07)), (), jnp.float32)
    if self.fusion == "weighted":
      self.fusion_gates = self.param("fusion_gates", nn.initializers.ones, (2,), jnp.float32)
    elif self.fusion == "cross_attention":
      self.fuser = CrossAttentionFusion(self.vision_config.embed_dim, self.fusion_heads)
    if self.num_classes:
      self.classifier = nn.Dense(self.num_classes, use_bias=False, kernel_init=nn.initializers.normal(0.001))

  def encode_images(self, images: jax.Array) -> EncoderOutput:
    """uint8 [B, H, W, 3] photos or sketches."""
    return self.vision(normalize_images(images, jnp.dtype(self.vision_config.dtype)))

  def encode_texts(self, token_ids: jax.Array) -> EncoderOutput:
    return self.text(token_ids)

  def fuse(self, text: EncoderOutput, token_ids: jax.Array, sketch: EncoderOutput) -> jax.Array:
    """The text+sketch feature [B, D] (fp32)."""
    t, s = text.embedding.astype(jnp.float32), sketch.embedding.astype(jnp.float32)
    if self.fusion == "weighted":
      return self.fusion_gates[0] * t + self.fusion_gates[1] * s
    if self.fusion == "cross_attention":
      eot = jnp.argmax(token_ids == self.text_config.eot_token_id, axis=-1)
      return self.fuser(text, jnp.arange(token_ids.shape[1]) <= eot[:, None], sketch)
    return t + s

  def encode_text_sketch(self, token_ids: jax.Array, sketches: jax.Array) -> jax.Array:
    return self.fuse(self.encode_texts(token_ids), token_ids, self.encode_images(sketches))

  def __call__(self, images: jax.Array, sketches: jax.Array, token_ids: jax.Array) -> Embeddings:
    both = self.encode_images(jnp.concatenate([images, sketches]))
    n = images.shape[0]
    photo, sketch = jax.tree.map(lambda x: x[:n], both), jax.tree.map(lambda x: x[n:], both)
    text = self.encode_texts(token_ids)
    features = [x.embedding.astype(jnp.float32) for x in (photo, text, sketch)]
    logits = jnp.stack([self.classifier(f) for f in features]) if self.num_classes else None
    return Embeddings(image=features[0], sketch=features[2], text=features[1],
                      fusion=self.fuse(text, token_ids, sketch), log_scale=self.logit_scale, logits=logits)


class SketchTextCompanions:
  """Per training photo: one of its captions (token ids) and a sketch of that photo (the paper's pairing).

  sketches='dataset': the data's sketch of the photo when it has one (a sketch
  record whose source is the photo; the synthetic set has one per outfit),
  else the photo drawn as a sketch; 'drawn': always drawn, as for a real photo
  dataset. The sketch is flipped and shifted like the photos (on white paper),
  independently of them. Picklable.
  """

  def __init__(self, records: Sequence[Record], tokens: TextTokens, image_size: tuple[int, int],
               sketches: str = "dataset", flip: bool = True, padding: int = 0):
    if sketches not in SKETCH_SOURCES:
      raise ValueError(f"data.sketches must be one of {SKETCH_SOURCES}, got {sketches!r}")
    self.tokens, self.image_size, self.flip, self.padding = tokens, tuple(image_size), flip, padding
    self.files = {r.source: r.path for r in records if r.modality == "sketch" and r.source and sketches == "dataset"}

  def __call__(self, record_index: int, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
    del record_index
    text = self.tokens(record.captions[rng.integers(len(record.captions))])
    if record.path in self.files:
      sketch = image_ops.decode_image(self.files[record.path], self.image_size)
    else:
      sketch = draw_sketch(record.path, self.image_size)
    if self.flip:
      sketch = image_ops.random_flip(sketch, rng)
    paper = 255 - image_ops.random_crop_with_padding(255 - sketch, self.padding, rng)  # white padding
    return {"sketch": paper, "text": text}


class SketchQueries:
  """Sketch queries as a pipeline source: sketch images as they are, photos drawn as sketches."""

  def __init__(self, records: Sequence[Record]):
    self.records = tuple(records)

  def __len__(self) -> int:
    return len(self.records)

  def image(self, index: int, size: tuple[int, int]) -> np.ndarray:
    record = self.records[index]
    if record.modality == "sketch":
      return image_ops.decode_image(record.path, size)
    return draw_sketch(record.path, size)


def is_training_photo(record: Record) -> bool:
  """A full-resolution visible photo with at least one caption."""
  return record.modality == "rgb" and record.scale == 1 and bool(record.captions)


class UNIReID(Method):
  """UNIReID: trains on captioned photos (`train_records`), each with a caption and a sketch (`companions`)."""

  query_kinds = ("image", "text", "sketch", "text+sketch", "image+instruction")
  needs_captions = True

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer: Tokenizer | None = None):
    """The training set's captions train the local tokenizer, its sketches pair with the photos. `tokenizer`:
    default the run's (jreid.methods.text.method_tokenizer)."""
    super().__init__(config, num_classes, train_records, tokenizer)
    if config.loss.positives not in POSITIVES:
      raise ValueError(f"loss.positives must be one of {POSITIVES}, got {config.loss.positives!r}")
    if self.tokenizer is None:
      self.tokenizer = method_tokenizer(config, self.train_set, tokenizer_cache_dir())
    self.vision, self.text = clip_towers(config, self.tokenizer)
    self.towers = {"vision": self.vision, "text": self.text}
    self.tokens = TextTokens(self.tokenizer, self.text.context_length)
    self.net = UNIReIDNet(self.vision, self.text, config.model.fusion, config.model.fusion_heads,
                          num_classes if config.loss.id_weight else 0)
    self.pretrained = self.read_pretrained({"vision": self.vision.image_size}, text=True)

  def train_records(self, records: Sequence[Record]) -> list[Record]:
    """The training rows: captioned full-resolution photos (sketches come with them as companions)."""
    rows = [r for r in records if is_training_photo(r)]
    if not rows:
      raise ValueError("UNIReID trains on captioned photos, and the training set has none")
    return rows

  def companions(self) -> SketchTextCompanions:
    """Each row's caption tokens and sketch; sketch files are looked up in the whole training set."""
    augment = self.config.data.augment
    return SketchTextCompanions(self.train_set, self.tokens, self.vision.image_size, self.config.data.sketches,
                                augment.flip, augment.padding)

  def train_stream(self, spec: pipeline.TrainBatchSpec):
    """P x K of the captioned photos, with their companions."""
    return pipeline.train_dataset(self.train_records(self.train_set), spec, num_workers=self.config.data.num_workers,
                                  companions=self.companions())

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Random init; both towers from config.model.init when it names a converted CLIP."""
    images = jnp.asarray(batch["image"][:2])
    params = dict(self.net.init(rng, images, images, jnp.zeros((2, self.text.context_length), jnp.int32))["params"])
    return self.with_pretrained(params), {}

  def loss(self, params, model_state, batch, rng):
    del rng
    out = self.net.apply({"params": params}, batch["image"], batch["sketch"], batch["text"])
    cfg = self.config.loss
    labels = batch["label"] if cfg.positives == "identity" else batch["index"]
    scale = losses.logit_scale(out.log_scale)
    photo_text = losses.symmetric_info_nce(out.image, out.text, scale, labels)
    photo_sketch = losses.symmetric_info_nce(out.image, out.sketch, scale, labels)
    photo_fusion = losses.symmetric_info_nce(out.image, out.fusion, scale, labels)
    if cfg.dynamic:
      tasks = losses.dynamic_task_loss(photo_text, photo_sketch, cfg.dynamic_alpha, cfg.dynamic_gamma,
                                       cfg.dynamic_stop_gradient)
    else:
      tasks = photo_text.mean() + photo_sketch.mean()
    align = losses.distribution_alignment(losses.similarity_logits(out.sketch, out.image, scale),
                                          losses.similarity_logits(out.text, out.image, scale))
    total = tasks + photo_fusion.mean() + cfg.align_weight * align
    terms = {"photo_text": photo_text.mean(), "photo_sketch": photo_sketch.mean(),
             "photo_fusion": photo_fusion.mean(), "tasks": tasks, "align": align, "temperature": 1 / scale}
    if out.logits is not None:
      terms["id"] = jnp.mean(jnp.stack([losses.cross_entropy(logits, batch["label"], cfg.label_smoothing)
                                        for logits in out.logits]))
      total = total + cfg.id_weight * terms["id"]
    return total, (terms, model_state)

  def encode_images(self, params, model_state, images: jax.Array) -> jax.Array:
    """L2-normalised features of uint8 photos or sketches."""
    return l2_normalize(self.net.apply({"params": params}, images, method=UNIReIDNet.encode_images).embedding)

  def encode_texts(self, params, token_ids: jax.Array) -> jax.Array:
    return l2_normalize(self.net.apply({"params": params}, token_ids, method=UNIReIDNet.encode_texts).embedding)

  def encode_text_sketch(self, params, token_ids: jax.Array, sketches: jax.Array) -> jax.Array:
    return l2_normalize(self.net.apply({"params": params}, token_ids, sketches, method=UNIReIDNet.encode_text_sketch))

  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """Features [N, D] of evaluation records of one query kind ('image' for galleries).

    Text comes from record.captions[0]; sketches from record.path (a photo
    there is drawn as a sketch); image+instruction queries use the image alone.
    """
    self.check_query_kind(kind)
    size = self.vision.image_size
    if kind in ("image", "image+instruction", "sketch"):
      encode = functools.partial(self.compiled(self.encode_images), state.params, state.model_state)
      return extract_image_features(encode, SketchQueries(records) if kind == "sketch" else records, size,
                                    batch_size)
    chunks = padded_chunks(self.tokens.batch([r.captions[0] for r in records]), batch_size)
    if kind == "text":
      features = [self.compiled(self.encode_texts)(state.params, chunk) for chunk in chunks]
    else:
      features = [self.compiled(self.encode_text_sketch)(state.params, chunk, sketches)
                  for chunk, (sketches, _) in zip(chunks, eval_batches(SketchQueries(records), size, batch_size))]
    return np.asarray(jax.device_get(jnp.concatenate(features)), np.float32)[:len(records)]
