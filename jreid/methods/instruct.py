"""Instruct-ReID (He et al., CVPR 2024): one model for six ReID tasks, each a query image plus an instruction.

The instruction (a sentence, a description, or a clothes-template image) is
encoded by an instruction encoder (a CLIP-style text tower or a converted BERT
for sentences, a ViT for templates); the image tower is an editing transformer
(jreid.models.editing) whose blocks also attend over the instruction tokens
through zero-initialised gates. Retrieval uses F, the projected class token;
F_out, the attention fusion of F with the instruction tokens, carries the
second set of losses (paper eq. 7): adaptive triplet and identity losses on F
and on F_out, each behind its own BNNeck and classifier. Text-to-image rows
(eq. 8) encode the image alone and learn image-text contrast on F and
image-text matching on F_out with hard negatives drawn from the similarity
softmax.

Training mixes the tasks of config.data.tasks by config.data.task_ratios
(`train_tasks`); every task is a view of the training records with its own
instructions (`TASK_KINDS`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
from typing import Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from data_pipelines import images as image_ops
from data_pipelines import instructions as instruction_pools
from data_pipelines import mixing
from data_pipelines.pipeline import TrainBatchSpec, eval_batches
from data_pipelines.records import Record
from jreid import losses
from jreid.ops import l2_normalize, masked_mean
from jreid.methods.export import exported_towers
from jreid.methods.text import TextTokens, method_tokenizer, tokenizer_cache_dir
from jreid.models import bert as bert_lib
from jreid.models.clip import EncoderOutput, TextConfig, TextTransformer, VisionConfig, VisionTransformer
from jreid.models.editing import AttentionFusion, EditingVisionTransformer
from jreid.models.pretrained import pretrained_tower_configs, pretrained_towers
from jreid.models.preprocess import normalize_images
from jreid.models.reid_head import BNNeckHead
from jreid.models.tokenizer import Tokenizer

# The six tasks of Instruct-ReID and the instruction each row of theirs carries.
TASK_KINDS = ("traditional", "clothes_changing", "visible_infrared", "text", "clothes_template",
              "language_instructed")
# The unified model's further tasks: low-resolution photos, sketches, and sketches with a caption.
QUERY_TASKS = ("cross_resolution", "sketch", "text+sketch")
ALL_TASKS = TASK_KINDS + QUERY_TASKS
ENCODERS = ("clip_text", "bert")
# What a row's instruction is: nothing, a sentence that edits the image, a template image that edits it, a
# caption (text-to-image rows: encoded for the losses, never editing the image), or a caption whose embedding
# is added to the image's (text+sketch rows: the sum fusion of UNIReID).
NONE, TEXT, TEMPLATE, CAPTION, FUSION = range(5)
_MAX_LOG_SCALE = math.log(100.0)  # CLIP's cap on the learned logit scale.
_EDITING_PARAMS = ("instruction_key", "instruction_value", "gate")  # Not in a pretrained ViT.


def ratio_key(task: str) -> str:
  """A task's key in config.data.task_ratios: its name with '+' as '_', so that a flag can name it
  (--config.data.task_ratios.text_sketch=2)."""
  return task.replace("+", "_")


@flax.struct.dataclass
class Instruction:
  """Encoded instructions: tokens [B, S, width] (text then template tokens), mask [B, S], embedding [B, D]."""

  tokens: jax.Array
  mask: jax.Array
  embedding: jax.Array


@flax.struct.dataclass
class Outputs:
  """A training forward pass.

  feature, fused: F and F_out [B, D] (fp32); logits, fused_logits: their
  identity logits; match_logits: image-text matching logits [B, 2] of each row
  with its own instruction; class_token: the image tower's class token [B, width].
  """

  feature: jax.Array
  fused: jax.Array
  logits: jax.Array
  fused_logits: jax.Array
  match_logits: jax.Array
  instruction: Instruction
  class_token: jax.Array


class InstructNet(nn.Module):
  """Editing (or plain) image tower `vision`, instruction encoders, fusion E_f, heads, matching, logit scale."""

  vision_config: VisionConfig
  template_config: VisionConfig
  text_config: TextConfig | None
  bert_config: bert_lib.BertConfig | None
  editing: bool
  fusion_layers: int
  fusion_heads: int
  fusion_mlp_dim: int
  num_classes: int
  shared_template: bool = False  # template images go through `vision` (with no instruction) instead

  def setup(self):
    v = self.vision_config
    dtype, param_dtype = jnp.dtype(v.dtype), jnp.dtype(v.param_dtype)
    self.vision = EditingVisionTransformer(v) if self.editing else VisionTransformer(v)
    if not self.shared_template:
      self.template = VisionTransformer(self.template_config)
    if self.bert_config is not None:
      self.bert = bert_lib.Bert(self.bert_config)
      self.bert_proj = nn.Dense(v.embed_dim, use_bias=False, dtype=dtype, param_dtype=param_dtype)
    else:
      self.text = TextTransformer(self.text_config)
    dense = functools.partial(nn.Dense, v.width, dtype=dtype, param_dtype=param_dtype)
    self.text_adapter, self.template_adapter = dense(), dense()
    self.fusion = AttentionFusion(v.width, self.fusion_heads, self.fusion_mlp_dim, v.embed_dim, self.fusion_layers,
                                  v.activation, v.layer_norm_eps, dtype, param_dtype)
    self.head = BNNeckHead(self.num_classes)
    self.fused_head = BNNeckHead(self.num_classes)
    self.matching = nn.Dense(2)
    self.logit_scale = self.param("logit_scale", nn.initializers.constant(math.log(1 / 0.07)), (), jnp.float32)

  def encode_text(self, token_ids: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(tokens [B, L, width], mask [B, L], embedding [B, D]) of token ids."""
    if self.bert_config is not None:
      tokens, mask = self.bert(token_ids)
      return tokens, mask, self.bert_proj(bert_lib.mean_pool(tokens, mask).astype(tokens.dtype))
    out = self.text(token_ids)
    eot = jnp.argmax(token_ids == self.text_config.eot_token_id, axis=-1)
    return out.tokens, jnp.arange(token_ids.shape[1]) <= eot[:, None], out.embedding

  def encode_template(self, templates: jax.Array) -> EncoderOutput:
    """Template images [B, H, W, 3] (uint8) through the template tower, or the image tower unedited."""
    x = normalize_images(templates, jnp.dtype(self.template_config.dtype))
    if not self.shared_template:
      return self.template(x)
    if not self.editing:
      return self.vision(x)
    nothing = jnp.zeros((x.shape[0], 1, self.vision_config.width), x.dtype)
    return self.vision(x, nothing, jnp.zeros((x.shape[0], 1), bool))

  def encode_instruction(self, token_ids: jax.Array, templates: jax.Array, kind: jax.Array) -> Instruction:
    """Sentences (kind TEXT, CAPTION, FUSION) or template images (kind TEMPLATE) of each row.

    The template tower runs only when some row has a template (a batch of
    other tasks skips it).
    """
    text_tokens, text_mask, text_embedding = self.encode_text(token_ids)
    is_text = (kind == TEXT) | (kind == CAPTION) | (kind == FUSION)
    is_template = kind == TEMPLATE
    t = self.vision_config if self.shared_template else self.template_config
    dtype = jnp.dtype(t.dtype)
    encoded = lambda net, x: jax.tree.map(lambda y: y.astype(dtype), net.encode_template(x))
    skipped = lambda net, x: EncoderOutput(jnp.zeros((x.shape[0], t.grid[0] * t.grid[1] + 1, t.width), dtype),
                                           jnp.zeros((x.shape[0], t.width), dtype),
                                           jnp.zeros((x.shape[0], t.embed_dim), dtype))
    if self.is_initializing():  # both branches must see the same parameters: create them first
      template = encoded(self, templates)
    else:
      template = nn.cond(jnp.any(is_template), encoded, skipped, self, templates)
    tokens = jnp.concatenate([self.text_adapter(text_tokens), self.template_adapter(template.tokens)], axis=1)
    mask = jnp.concatenate([text_mask & is_text[:, None],
                            jnp.broadcast_to(is_template[:, None], template.tokens.shape[:2])], axis=1)
    embedding = jnp.where(is_template[:, None], template.embedding.astype(jnp.float32),
                          text_embedding.astype(jnp.float32))
    return Instruction(tokens, mask, embedding)

  def encode_image(self, images: jax.Array, instruction: Instruction, kind: jax.Array) -> EncoderOutput:
    """uint8 images [B, H, W, 3], edited by the instructions of rows of kind TEXT or TEMPLATE."""
    x = normalize_images(images, jnp.dtype(self.vision_config.dtype))
    if not self.editing:
      return self.vision(x)
    edits = (kind == TEXT) | (kind == TEMPLATE)
    return self.vision(x, instruction.tokens, instruction.mask & edits[:, None])

  def fuse(self, class_token: jax.Array, instruction_tokens: jax.Array, instruction_mask: jax.Array) -> jax.Array:
    """F_out [B, D] (fp32): E_f of the image's class token and the instruction tokens."""
    return self.fusion(class_token, instruction_tokens, instruction_mask).astype(jnp.float32)

  def match(self, fused: jax.Array) -> jax.Array:
    """Image-text matching logits [B, 2] (1 = the pair matches) from F_out."""
    return self.matching(fused)

  def feature(self, image: EncoderOutput, instruction: Instruction, kind: jax.Array) -> jax.Array:
    """F [B, D] (fp32): the image's embedding, plus its caption's for FUSION rows (text + sketch)."""
    fusion = jnp.where((kind == FUSION)[:, None], instruction.embedding, 0.0)
    return image.embedding.astype(jnp.float32) + fusion

  def encode_queries(self, images: jax.Array, token_ids: jax.Array, templates: jax.Array,
                     kind: jax.Array) -> jax.Array:
    """Retrieval features: F, L2-normalised."""
    instruction = self.encode_instruction(token_ids, templates, kind)
    return l2_normalize(self.feature(self.encode_image(images, instruction, kind), instruction, kind))

  def encode_captions(self, token_ids: jax.Array) -> jax.Array:
    """Text-to-image query features: the text embedding, L2-normalised."""
    return l2_normalize(self.encode_text(token_ids)[2])

  def __call__(self, images: jax.Array, token_ids: jax.Array, templates: jax.Array, kind: jax.Array,
               train: bool = False) -> Outputs:
    instruction = self.encode_instruction(token_ids, templates, kind)
    image = self.encode_image(images, instruction, kind)
    feature = self.feature(image, instruction, kind)
    fused = self.fuse(image.feature, instruction.tokens, instruction.mask)
    _, logits = self.head(feature, train)
    _, fused_logits = self.fused_head(fused, train)
    return Outputs(feature, fused, logits, fused_logits, self.match(fused), instruction, image.feature)


def _is_photo(record: Record) -> bool:
  return record.modality == "rgb" and record.scale == 1


class Outfits:
  """Per identity, its outfits (clothes ids) with their template images and clothes descriptions."""

  def __init__(self, records: Sequence[Record]):
    templates, descriptions = collections.defaultdict(set), collections.defaultdict(set)
    for r in records:
      if _is_photo(r) and r.clothes_id >= 0:
        if r.template:
          templates[(r.pid, r.clothes_id)].add(r.template)
        if r.instruction:
          descriptions[(r.pid, r.clothes_id)].add(r.instruction)
    self.templates = {key: sorted(v) for key, v in templates.items()}
    self.descriptions = {key: sorted(v) for key, v in descriptions.items()}
    self._templated, self._described = _outfits_by_pid(self.templates), _outfits_by_pid(self.descriptions)

  def with_templates(self, pid: int) -> list[int]:
    return self._templated.get(pid, [])

  def with_descriptions(self, pid: int) -> list[int]:
    return self._described.get(pid, [])


def _outfits_by_pid(keys) -> dict[int, list[int]]:
  by_pid = collections.defaultdict(list)
  for pid, clothes in sorted(keys):
    by_pid[pid].append(clothes)
  return dict(by_pid)


def task_records(kind: str, records: Sequence[Record], outfits: Outfits) -> list[Record]:
  """The training rows of one task kind.

  traditional: full-resolution photos of each identity's first outfit;
  clothes_changing: all its photos; visible_infrared: photos and infrared
  images of identities that have both; text: captioned photos;
  clothes_template / language_instructed: photos of identities with an outfit
  template / description (the instruction names one of the identity's
  outfits, drawn per row); cross_resolution: photos and low-resolution copies
  of identities that have both; sketch, text+sketch: photos and sketches of
  identities that have both (text+sketch: captioned sketches).
  """
  photos = [r for r in records if _is_photo(r)]
  if kind in QUERY_TASKS:
    if kind == "cross_resolution":
      others = [r for r in records if r.modality == "rgb" and r.scale > 1]
    else:
      others = [r for r in records if r.modality == "sketch" and (r.captions or kind == "sketch")]
    both = {r.pid for r in others} & {r.pid for r in photos}
    return [r for r in photos + others if r.pid in both]
  if kind == "traditional":
    first = {}
    for r in photos:
      first[r.pid] = min(first.get(r.pid, r.clothes_id), r.clothes_id)
    return [r for r in photos if r.clothes_id == first[r.pid]]
  if kind == "clothes_changing":
    return photos
  if kind == "visible_infrared":
    infrared = [r for r in records if r.modality == "ir"]
    both = {r.pid for r in infrared} & {r.pid for r in photos}
    return [r for r in photos + infrared if r.pid in both]
  if kind == "text":
    return [r for r in photos if r.captions]
  if kind == "clothes_template":
    return [r for r in photos if outfits.with_templates(r.pid)]
  if kind == "language_instructed":
    return [r for r in photos if outfits.with_descriptions(r.pid)]
  raise ValueError(f"unknown Instruct-ReID task {kind!r}; expected one of {ALL_TASKS}")


class InstructionCompanions:
  """Per training row of one task: its identity, its instruction (token ids or a template) and the kind.

  Fixed-sentence tasks draw one paraphrase of their instruction
  (data_pipelines.instructions); text rows one of the photo's captions;
  clothes-template and language-instructed rows one of the identity's outfits
  (uniformly), then that outfit's template or one of its descriptions;
  text+sketch rows that are sketches one of their captions (FUSION); the
  other rows of the query tasks (cross_resolution, sketch) none. Picklable.
  """

  def __init__(self, kind: str, identities: dict[int, int], outfits: Outfits, tokens: TextTokens,
               template_size: tuple[int, int]):
    if kind not in ALL_TASKS:
      raise ValueError(f"unknown Instruct-ReID task {kind!r}; expected one of {ALL_TASKS}")
    self.kind, self.identities, self.outfits, self.tokens = kind, identities, outfits, tokens
    self.template_size = tuple(template_size)

  def __call__(self, record_index: int, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
    del record_index
    text, template, kind = "", None, TEXT
    if self.kind in QUERY_TASKS:
      kind = NONE
      if self.kind == "text+sketch" and record.modality == "sketch":
        text, kind = record.captions[rng.integers(len(record.captions))], FUSION
    elif self.kind in instruction_pools.POOLS:
      text = instruction_pools.draw(self.kind, rng)
    elif self.kind == "text":
      text, kind = record.captions[rng.integers(len(record.captions))], CAPTION
    elif self.kind == "clothes_template":
      options = self.outfits.with_templates(record.pid)
      paths = self.outfits.templates[(record.pid, options[rng.integers(len(options))])]
      template, kind = image_ops.decode_image(paths[rng.integers(len(paths))], self.template_size), TEMPLATE
    else:
      options = self.outfits.with_descriptions(record.pid)
      texts = self.outfits.descriptions[(record.pid, options[rng.integers(len(options))])]
      text = texts[rng.integers(len(texts))]
    return {
        "identity": np.int32(self.identities[record.pid]),
        "instruction": self.tokens(text),
        "template": np.zeros((*self.template_size, 3), np.uint8) if template is None else template,
        "instruction_kind": np.int32(kind),
    }


class EvalInstructions:
  """What an evaluation record's instruction is, as a pipeline source of template images (zeros if none).

  'image+template' queries use record.template; 'image+instruction' queries
  record.instruction; 'image' items (galleries, fixed-instruction queries) the
  template if they have one, else the instruction sentence if they have one;
  'sketch' queries none; 'text+sketch' queries their first caption (FUSION).
  """

  def __init__(self, records: Sequence[Record], kind: str):
    self.records = tuple(records)
    uses_template = lambda r: bool(r.template) and kind in ("image", "image+template")
    uses_text = lambda r: bool(r.instruction) and kind in ("image", "image+instruction")
    if kind == "text+sketch":
      self.kinds = np.array([FUSION if r.captions else NONE for r in records], np.int32)  # no text: sketch only
      self.texts = [r.captions[0] if r.captions else "" for r in records]
      return
    self.kinds = np.array([TEMPLATE if uses_template(r) else TEXT if uses_text(r) else NONE for r in records],
                          np.int32)
    self.texts = [r.instruction if k == TEXT else "" for r, k in zip(records, self.kinds)]

  def image(self, index: int, size: tuple[int, int]) -> np.ndarray:
    if self.kinds[index] != TEMPLATE:
      return np.zeros((*size, 3), np.uint8)
    return image_ops.decode_image(self.records[index].template, size)


def _padded_chunks(values: np.ndarray, batch_size: int) -> np.ndarray:
  """values [N, ...] zero-padded to whole batches: [num_batches, batch_size, ...]."""
  padded = np.zeros((-(-len(values) // batch_size) * batch_size, *values.shape[1:]), values.dtype)
  padded[:len(values)] = values
  return padded.reshape(-1, batch_size, *values.shape[1:])


def _cross_entropy_per_row(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  logits = logits.astype(jnp.float32)
  targets = jax.nn.one_hot(labels, logits.shape[-1])
  targets = (1.0 - label_smoothing) * targets + label_smoothing / logits.shape[-1]
  return -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def _hard_negatives(rng: jax.Array, similarity: jax.Array, allowed: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per row, a column drawn from softmax(similarity) over the allowed columns; and whether the row has one."""
  index = jax.random.categorical(rng, jnp.where(allowed, jax.lax.stop_gradient(similarity), -jnp.inf))
  return index, jnp.any(allowed, axis=1)


class InstructReID:
  """The method object the trainer drives (see jreid.methods.image_reid.ImageReID for the interface).

  Also provides train_tasks(records, spec): the task views of the training
  records with their instruction companions, to mix with
  data_pipelines.mixing.mixed_dataset(tasks, config.data.mix_mode, ...).
  """

  query_kinds = ("image", "sketch", "text", "text+sketch", "image+instruction", "image+template")

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer: Tokenizer | bert_lib.WordPieceTokenizer | None = None):
    """`train_records`: the training set (identities, outfits, tokenizer); default: read from config.data;
    () for inference. `tokenizer`: default the converted BERT's (model.instruction.bert) with BERT
    instructions, else the run's (jreid.methods.text.method_tokenizer).

    num_classes is checked against a training set's identities (one classifier covers every task).
    """
    self.config = config
    if train_records is None:
      from data_pipelines.datasets import run_training_records
      train_records = run_training_records(config)
    self.train_set = tuple(train_records)
    self.identities = {pid: i for i, pid in enumerate(sorted({r.pid for r in self.train_set}))}
    if self.train_set and len(self.identities) != num_classes:
      raise ValueError(f"{num_classes} classes asked for, but the training set has {len(self.identities)} identities")
    self.outfits = Outfits(self.train_set)
    m = config.model
    if m.instruction.encoder not in ENCODERS:
      raise ValueError(f"model.instruction.encoder must be one of {ENCODERS}, got {m.instruction.encoder!r}")
    towers = exported_towers(config)
    self.bert = None
    if towers is not None and "bert" in towers:
      self.bert = bert_lib.BertConfig(**towers["bert"])
    elif m.instruction.encoder == "bert":
      self.bert = dataclasses.replace(bert_lib.load_bert_config(m.instruction.bert), dtype=m.vision.dtype,
                                      param_dtype=m.vision.param_dtype)
    if tokenizer is None and self.bert is not None:
      tokenizer = bert_lib.load_wordpiece_tokenizer(os.path.join(m.instruction.bert, bert_lib.TOKENIZER_DIR))
    elif tokenizer is None:
      tokenizer = method_tokenizer(config, self.train_set, tokenizer_cache_dir())
    self.tokenizer = tokenizer
    self.vision, self.template, self.text = self._tower_configs(tokenizer)
    self.towers = {name: tower for name, tower in (("vision", self.vision), ("template", self.template),
                                                   ("text", self.text), ("bert", self.bert)) if tower is not None}
    self.tokens = TextTokens(tokenizer, m.text.context_length)
    self.net = InstructNet(self.vision, self.template, self.text, self.bert, m.editing, m.fusion.layers,
                           m.fusion.heads, m.fusion.mlp_dim, num_classes, m.template.get("shared", False))
    self.pretrained = self._pretrained_towers()
    self._encoders = {}

  def _tower_configs(self, tokenizer) -> tuple[VisionConfig, VisionConfig, TextConfig | None]:
    """The image and template towers and the text tower (None with BERT instructions).

    An export's (jreid.methods.export), else config.model's, or the converted
    CLIP's when config.model.init names one; with model.template.shared the
    template tower is the image tower.
    """
    towers = exported_towers(self.config)
    if towers is not None:
      text = TextConfig(**towers["text"]) if "text" in towers else None
      return VisionConfig(**towers["vision"]), VisionConfig(**towers["template"]), text
    vision, template, text = self._own_tower_configs(tokenizer)
    return vision, vision if self.config.model.template.get("shared", False) else template, text

  def _own_tower_configs(self, tokenizer) -> tuple[VisionConfig, VisionConfig, TextConfig | None]:
    m = self.config.model
    dtypes = dict(dtype=m.vision.dtype, param_dtype=m.vision.param_dtype)
    if m.init:
      vision, text = pretrained_tower_configs(m)
      template = dataclasses.replace(vision, image_size=tuple(m.template.image_size))
    else:
      vision = VisionConfig(**m.vision.to_dict())
      own = {k: v for k, v in m.template.to_dict().items() if k != "shared"}
      template = VisionConfig(**{**own, "embed_dim": vision.embed_dim, **dtypes})
      text = None if self.bert else TextConfig(**{
          **m.text.to_dict(), "embed_dim": vision.embed_dim, "vocab_size": tokenizer.vocab_size,
          "eot_token_id": tokenizer.eot_token_id, **dtypes})
    return vision, template, None if self.bert else text

  def train_tasks(self, records: Sequence[Record], spec: TrainBatchSpec) -> list[mixing.MixTask]:
    """The MixTasks of config.data.tasks (task kinds) with config.data.task_ratios (keys: `ratio_key`)."""
    data = self.config.data
    tasks = []
    for kind in data.tasks:
      rows = task_records(kind, records, self.outfits)
      if not rows:
        raise ValueError(f"task {kind!r} has no training rows in this training set")
      pair = {"visible_infrared": ("rgb", "ir"), "sketch": ("rgb", "sketch"), "text+sketch": ("rgb", "sketch")}
      balance = pair.get(kind, ()) if spec.num_instances % 2 == 0 else ()
      companions = InstructionCompanions(kind, self.identities, self.outfits, self.tokens, self.template.image_size)
      tasks.append(mixing.MixTask(kind, rows, float(data.task_ratios[ratio_key(kind)]),
                                  dataclasses.replace(spec, balance_modalities=balance), companions))
    if not tasks:
      raise ValueError("config.data.tasks names no task")
    return tasks

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Random init; towers from config.model.init (CLIP) and model.instruction.bert when they are given."""
    images = jnp.asarray(batch["image"][:2])
    variables = self.net.init(rng, images, jnp.zeros((2, self.tokens.context_length), jnp.int32),
                              jnp.zeros((2, *self.template.image_size, 3), jnp.uint8),
                              jnp.array([TEXT, TEMPLATE], jnp.int32), train=False)
    params = dict(variables.pop("params"))
    for tower, loaded in self.pretrained.items():
      params[tower] = _merge(loaded, params[tower], tower)
    model_state = dict(variables)
    if self.config.loss.dynamic:  # the tasks' running confidences (config.data.tasks order)
      num_tasks = len(self.config.data.tasks)
      model_state["task_stats"] = {"confidence": jnp.zeros(num_tasks, jnp.float32),
                                   "seen": jnp.zeros(num_tasks, bool)}
    return params, model_state

  def _pretrained_towers(self) -> dict:
    """Host copies of the pretrained towers' parameters (read here, outside any trace: init is traced)."""
    towers = {}
    m = self.config.model
    if m.init:
      sizes = {"vision": self.vision.image_size}
      if not self.net.shared_template:
        sizes["template"] = self.template.image_size
      towers.update(pretrained_towers(m.init, sizes, text=self.text is not None))
    if self.bert is not None and m.instruction.bert:  # an export's config names no BERT
      towers["bert"] = jax.tree.map(np.asarray, bert_lib.load_bert(m.instruction.bert)[1])
    return towers

  def loss(self, params, model_state, batch, rng):
    cfg = self.config.loss
    kind = batch["instruction_kind"]
    labels = batch["identity"]
    out, updates = self.net.apply({"params": params, **model_state}, batch["image"], batch["instruction"],
                                    batch["template"], kind, train=True, mutable=["batch_stats"])
    reid, t2i = kind != CAPTION, kind == CAPTION
    updates = dict(updates)
    id_rows = _cross_entropy_per_row(out.logits, labels, cfg.label_smoothing)
    contrastive_rows, terms = self._text_to_image_losses(params, model_state, out, labels, t2i, rng)
    weights = jnp.ones(labels.shape, jnp.float32)
    if cfg.dynamic:  # each row weighted by its task's confidence (identity CE, or InfoNCE for text rows)
      weights, updates["task_stats"] = self._task_weights(model_state["task_stats"], batch["task"],
                                                          jnp.where(reid, id_rows, contrastive_rows))
      terms["task_weight"] = jnp.mean(weights)
    if cfg.adaptive:
      relatedness = losses.instruction_relatedness(labels, out.instruction.embedding)
    else:
      relatedness = (labels[:, None] == labels[None, :]).astype(jnp.float32)
    triplet = functools.partial(losses.adaptive_batch_hard_triplet, labels=labels, relatedness=relatedness,
                                margin=cfg.triplet_margin, valid=reid, intra_weight=cfg.intra_weight,
                                squared=cfg.squared_distance, anchor_weights=weights)
    identity = lambda rows: masked_mean(weights * rows, reid)
    terms.update({"triplet": triplet(out.feature), "id": identity(id_rows),
                  "triplet_out": triplet(out.fused),
                  "id_out": identity(_cross_entropy_per_row(out.fused_logits, labels, cfg.label_smoothing)),
                  "contrastive": masked_mean(weights * contrastive_rows, t2i)})
    gates = [jnp.abs(jnp.tanh(g)).mean() for path, g in jax.tree_util.tree_leaves_with_path(params["vision"])
             if path[-1].key == "gate"]
    if gates:
      terms["gate"] = jnp.mean(jnp.stack(gates))
    total = (cfg.triplet_weight * (terms["triplet"] + terms["triplet_out"])
             + cfg.id_weight * (terms["id"] + terms["id_out"])
             + cfg.contrastive_weight * terms["contrastive"] + cfg.matching_weight * terms["matching"])
    return total, (terms, updates)

  def _task_weights(self, stats: dict, task: jax.Array, row_loss: jax.Array) -> tuple[jax.Array, dict]:
    """Per-row weights alpha (1 + w_task)^gamma from the tasks' running confidences, and the updated stats."""
    cfg = self.config.loss
    confidence, seen = losses.update_confidence(stats["confidence"], stats["seen"], task, row_loss,
                                                jnp.ones(task.shape, bool), cfg.dynamic_momentum)
    w = losses.task_weights(confidence, seen)
    return cfg.dynamic_alpha * (1 + w[task]) ** cfg.dynamic_gamma, {"confidence": confidence, "seen": seen}

  def _text_to_image_losses(self, params, model_state, out: Outputs, labels, t2i, rng):
    """Per-row L_cl(F) [B] (zero off the text-to-image rows) and {'matching': L_match(F_out)}."""
    variables = {"params": params, **model_state}
    scale = jnp.exp(jnp.minimum(params["logit_scale"], _MAX_LOG_SCALE))
    # Rows of other tasks are never positives: they only add negatives.
    contrast_labels = jnp.where(t2i, labels, -1 - jnp.arange(labels.shape[0]))
    contrastive = jnp.where(t2i, losses.symmetric_info_nce(out.feature, out.instruction.embedding, scale,
                                                           contrast_labels), 0.0)
    similarity = losses.similarity_logits(out.feature, out.instruction.embedding, 1.0)
    allowed = (labels[:, None] != labels[None, :]) & t2i[None, :] & t2i[:, None]
    image_rng, text_rng = jax.random.split(rng)
    negative_text, has_text = _hard_negatives(image_rng, similarity, allowed)
    negative_image, has_image = _hard_negatives(text_rng, similarity.T, allowed.T)
    tokens, mask = out.instruction.tokens, out.instruction.mask
    fused_negatives = self.net.apply(
        variables, jnp.concatenate([out.class_token, out.class_token[negative_image]]),
        jnp.concatenate([tokens[negative_text], tokens]), jnp.concatenate([mask[negative_text], mask]),
        method=InstructNet.fuse)
    logits = jnp.concatenate([out.match_logits, self.net.apply(variables, fused_negatives, method=InstructNet.match)])
    n = labels.shape[0]
    targets = jnp.concatenate([jnp.ones(n, jnp.int32), jnp.zeros(2 * n, jnp.int32)])
    valid = jnp.concatenate([t2i, t2i & has_text, t2i & has_image])
    return contrastive, {"matching": masked_mean(_cross_entropy_per_row(logits, targets), valid)}

  def _encoder(self, name: str):
    if name not in self._encoders:
      method = {"queries": InstructNet.encode_queries, "captions": InstructNet.encode_captions}[name]
      self._encoders[name] = jax.jit(
          lambda params, model_state, *inputs: self.net.apply({"params": params, **model_state}, *inputs,
                                                              method=method))
    return self._encoders[name]

  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """Features [N, D] of evaluation records of one query kind ('image' for galleries).

    Text queries: the text embedding of record.captions[0]. Image queries and
    gallery items: F of the image edited by its instruction (EvalInstructions).
    """
    if kind not in self.query_kinds:
      raise ValueError(f"instruct cannot encode {kind!r} queries; it encodes {self.query_kinds}")
    if kind == "text":
      chunks = _padded_chunks(self.tokens.batch([r.captions[0] for r in records]), batch_size)
      features = [self._encoder("captions")(state.params, state.model_state, chunk) for chunk in chunks]
    else:
      instructions = EvalInstructions(records, kind)
      texts = _padded_chunks(self.tokens.batch(instructions.texts), batch_size)
      kinds = _padded_chunks(instructions.kinds, batch_size)
      images = eval_batches(records, self.vision.image_size, batch_size)
      templates = eval_batches(instructions, self.template.image_size, batch_size)
      features = [self._encoder("queries")(state.params, state.model_state, image, text, template, k)
                  for (image, _), (template, _), text, k in zip(images, templates, texts, kinds)]
    return np.asarray(jax.device_get(jnp.concatenate(features)), np.float32)[:len(records)]


def _merge(loaded, initial, tower: str):
  """Pretrained values over the initial tree; the editing blocks' own parameters (absent there) keep theirs."""
  if isinstance(initial, dict):
    unknown = sorted(set(loaded) - set(initial))
    absent = sorted(set(initial) - set(loaded) - set(_EDITING_PARAMS))
    if unknown or absent:
      raise ValueError(f"{tower} tower: the pretrained parameters do not match the model (not in the model: "
                       f"{unknown}; not pretrained: {absent})")
    return {k: _merge(loaded[k], v, tower) if k in loaded else v for k, v in initial.items()}
  if np.shape(loaded) != initial.shape:
    raise ValueError(f"{tower} tower: a pretrained parameter of shape {np.shape(loaded)} replaces one of "
                     f"{initial.shape}")
  return jnp.asarray(loaded, initial.dtype)
