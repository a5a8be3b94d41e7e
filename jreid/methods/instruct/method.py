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

import dataclasses
import functools
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from data_pipelines import instructions as instruction_pools
from data_pipelines import mixing
from data_pipelines.pipeline import TrainBatchSpec, eval_batches
from data_pipelines.records import Record
from jreid import losses
from jreid.eval.extract import padded_chunks
from jreid.methods.base import Method
from jreid.methods.export import exported_towers
from jreid.methods.instruct.kinds import CAPTION, ENCODERS, NONE, TEMPLATE, TEXT, StepParts, ratio_key, step_parts
from jreid.methods.instruct.net import InstructNet, Outputs
from jreid.methods.instruct.tasks import (EvalInstructions, InstructionCompanions, Outfits, task_records,
                                          trainable_tasks)
from jreid.methods.text import TextTokens, method_tokenizer, tokenizer_cache_dir
from jreid.methods.towers import local_text_tower, vision_tower
from jreid.models import bert as bert_lib
from jreid.models.clip import TextConfig, VisionConfig
from jreid.models.editing import EDITING_PARAMS
from jreid.models.pretrained import pretrained_tower_configs
from jreid.models.tokenizer import Tokenizer
from jreid.ops import masked_mean


class InstructReID(Method):
  """Instruct-ReID, and the unified model (method 'unified': nine tasks, configs/unified.py).

  Its training stream mixes the task views of the training set
  (`train_tasks`) by config.data.mix_mode.
  """

  query_kinds = ("image", "sketch", "text", "text+sketch", "image+instruction", "image+template")

  def __init__(self, config: ConfigDict, num_classes: int, train_records: Sequence[Record] | None = None,
               tokenizer: Tokenizer | bert_lib.WordPieceTokenizer | None = None):
    """The training set gives the identities, outfits and tokenizer. `tokenizer`: default the converted
    BERT's (model.instruction.bert) with BERT instructions, else the run's (jreid.methods.text).

    num_classes is checked against a training set's identities (one classifier covers every task).
    """
    super().__init__(config, num_classes, train_records, tokenizer)
    self.identities = {pid: i for i, pid in enumerate(sorted({r.pid for r in self.train_set}))}
    if self.train_set and len(self.identities) != num_classes:
      raise ValueError(f"{num_classes} classes asked for, but the training set has {len(self.identities)} identities")
    self.outfits = Outfits(self.train_set)
    m = config.model
    if m.instruction.encoder not in ENCODERS:
      raise ValueError(f"model.instruction.encoder must be one of {ENCODERS}, got {m.instruction.encoder!r}")
    self.bert = self._bert_tower()
    if self.tokenizer is None and self.bert is not None:
      self.tokenizer = bert_lib.load_wordpiece_tokenizer(os.path.join(m.instruction.bert, bert_lib.TOKENIZER_DIR))
    elif self.tokenizer is None:
      sentences = [s for kind in config.data.tasks for s in instruction_pools.POOLS.get(kind, ())]
      self.tokenizer = method_tokenizer(config, self.train_set, tokenizer_cache_dir(), sentences)
    self.vision, self.template, self.text = self._tower_configs()
    self.towers = {name: tower for name, tower in (("vision", self.vision), ("template", self.template),
                                                   ("text", self.text), ("bert", self.bert)) if tower is not None}
    self.tokens = TextTokens(self.tokenizer, m.text.context_length)
    shared = m.template.get("shared", False)
    self.net = InstructNet(self.vision, self.template, self.text, self.bert, m.editing, m.fusion.layers,
                           m.fusion.heads, m.fusion.mlp_dim, num_classes, shared)
    sizes = {"vision": self.vision.image_size, **({} if shared else {"template": self.template.image_size})}
    self.pretrained = self.read_pretrained(sizes, text=self.text is not None)
    if self.bert is not None and m.instruction.bert:  # an export's config names no BERT
      self.pretrained["bert"] = jax.tree.map(np.asarray, bert_lib.load_bert(m.instruction.bert)[1])

  @classmethod
  def fit_to_data(cls, config: ConfigDict, name: str, records: Sequence[Record]) -> None:
    """Drops from config.data.tasks the tasks without training rows in `records`, one line each saying what
    they need; none left is an error."""
    kept, skipped = trainable_tasks(config.data.tasks, records)
    for kind, needs in skipped.items():
      print(f"{config.method}: skipping training task {kind!r}: {name} has no {needs}")
    if not kept:
      raise ValueError(f"none of config.data.tasks {tuple(config.data.tasks)} has training rows in {name}")
    config.data.tasks = tuple(kept)

  def _bert_tower(self) -> bert_lib.BertConfig | None:
    """The BERT instruction tower: an export's, else model.instruction.bert's in the image tower's dtypes; None
    with CLIP-style text instructions."""
    towers, m = exported_towers(self.config), self.config.model
    if towers is not None:
      return bert_lib.BertConfig(**towers["bert"]) if "bert" in towers else None
    if m.instruction.encoder != "bert":
      return None
    return dataclasses.replace(bert_lib.load_bert_config(m.instruction.bert), dtype=m.vision.dtype,
                               param_dtype=m.vision.param_dtype)

  def _tower_configs(self) -> tuple[VisionConfig, VisionConfig, TextConfig | None]:
    """The image and template towers and the text tower (None with BERT instructions).

    An export's (jreid.methods.export), else the converted CLIP's when
    config.model.init names one (its image tower at the template size for
    templates), else config.model's; with model.template.shared the template
    tower is the image tower.
    """
    towers, m = exported_towers(self.config), self.config.model
    if towers is not None:
      text = TextConfig(**towers["text"]) if "text" in towers else None
      return VisionConfig(**towers["vision"]), VisionConfig(**towers["template"]), text
    vision = vision_tower(self.config)
    if m.init:
      text = None if self.bert else pretrained_tower_configs(m)[1]
      template = dataclasses.replace(vision, image_size=tuple(m.template.image_size))
    else:
      text = None if self.bert else local_text_tower(m, vision, self.tokenizer)
      own = {k: v for k, v in m.template.to_dict().items() if k != "shared"}
      template = VisionConfig(**{**own, "embed_dim": vision.embed_dim, "dtype": vision.dtype,
                                 "param_dtype": vision.param_dtype})
    return vision, vision if m.template.get("shared", False) else template, text

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

  def train_stream(self, spec: TrainBatchSpec):
    """The mix of the task views (`train_tasks`) by config.data.mix_mode."""
    data = self.config.data
    return mixing.mixed_dataset(self.train_tasks(self.train_set, spec), data.mix_mode, self.config.seed,
                                data.num_workers)

  def init(self, rng: jax.Array, batch: dict) -> tuple[dict, dict]:
    """Random init; towers from config.model.init (CLIP) and model.instruction.bert when they are given."""
    images = jnp.asarray(batch["image"][:2])
    variables = self.net.init(rng, images, jnp.zeros((2, self.tokens.context_length), jnp.int32),
                              jnp.zeros((2, *self.template.image_size, 3), jnp.uint8),
                              jnp.array([TEXT, TEMPLATE], jnp.int32), train=False)
    params = self.with_pretrained(dict(variables.pop("params")), own=EDITING_PARAMS)
    model_state = dict(variables)
    if self.config.loss.dynamic:  # the tasks' running confidences (config.data.tasks order)
      num_tasks = len(self.config.data.tasks)
      model_state["task_stats"] = {"confidence": jnp.zeros(num_tasks, jnp.float32),
                                   "seen": jnp.zeros(num_tasks, bool)}
    return params, model_state

  def step_variant(self, batch: dict) -> StepParts:
    """The parts of the network a host batch's rows use (`loss`'s variant): with data.mix_mode 'per_batch'
    its task's, else those of every training task. Every process's block of a batch gets the same answer."""
    tasks = self.config.data.tasks
    if self.config.data.mix_mode == "per_batch":
      tasks = [tasks[int(batch["task"][0])]]
    return step_parts(tasks)

  def loss(self, params, model_state, batch, rng, variant: StepParts | None = None):
    """variant: the parts the batch uses (`step_variant`); None: all of them."""
    cfg = self.config.loss
    parts = variant or StepParts()
    kind = batch["instruction_kind"]
    labels = batch["identity"]
    out, updates = self.net.apply({"params": params, **model_state}, batch["image"], batch["instruction"],
                                  batch["template"], kind, train=True, parts=parts, mutable=["batch_stats"])
    reid, t2i = kind != CAPTION, kind == CAPTION
    updates = dict(updates)
    id_rows = losses.cross_entropy_per_row(out.logits, labels, cfg.label_smoothing)
    if parts.image_text:
      contrastive_rows, terms = self._text_to_image_losses(params, model_state, out, labels, t2i, rng)
    else:  # no text-to-image row
      contrastive_rows, terms = jnp.zeros(labels.shape, jnp.float32), {"matching": jnp.zeros((), jnp.float32)}
    weights = jnp.ones(labels.shape, jnp.float32)
    if cfg.dynamic:  # each row weighted by its task's confidence (identity CE, or InfoNCE for text rows)
      weights, updates["task_stats"], task_weights = self._task_weights(
          model_state["task_stats"], batch["task"], jnp.where(reid, id_rows, contrastive_rows))
      terms["task_weight"] = jnp.mean(weights)
      terms.update({f"task_weight/{task}": w for task, w in zip(self.config.data.tasks, task_weights)})
    if cfg.adaptive and (parts.text or parts.template):
      relatedness = losses.instruction_relatedness(labels, out.instruction.embedding)
    else:
      relatedness = (labels[:, None] == labels[None, :]).astype(jnp.float32)
    triplet = functools.partial(losses.adaptive_batch_hard_triplet, labels=labels, relatedness=relatedness,
                                margin=cfg.triplet_margin, valid=reid, intra_weight=cfg.intra_weight,
                                squared=cfg.squared_distance, anchor_weights=weights)
    identity = lambda rows: masked_mean(weights * rows, reid)  # noqa: E731
    terms.update({"triplet": triplet(out.feature), "id": identity(id_rows),
                  "triplet_out": triplet(out.fused),
                  "id_out": identity(losses.cross_entropy_per_row(out.fused_logits, labels, cfg.label_smoothing)),
                  "contrastive": masked_mean(weights * contrastive_rows, t2i)})
    gates = [jnp.abs(jnp.tanh(g)).mean() for path, g in jax.tree_util.tree_leaves_with_path(params["vision"])
             if path[-1].key == "gate"]
    if gates:
      terms["gate"] = jnp.mean(jnp.stack(gates))
    total = (cfg.triplet_weight * (terms["triplet"] + terms["triplet_out"])
             + cfg.id_weight * (terms["id"] + terms["id_out"])
             + cfg.contrastive_weight * terms["contrastive"] + cfg.matching_weight * terms["matching"])
    return total, (terms, updates)

  def _task_weights(self, stats: dict, task: jax.Array, row_loss: jax.Array) -> tuple[jax.Array, dict, jax.Array]:
    """Per-row weights alpha (1 + w_task)^gamma from the tasks' running confidences, the updated stats, and
    each task's weight alpha (1 + w_task)^gamma [num_tasks]."""
    cfg = self.config.loss
    confidence, seen = losses.update_confidence(stats["confidence"], stats["seen"], task, row_loss,
                                                jnp.ones(task.shape, bool), cfg.dynamic_momentum)
    per_task = cfg.dynamic_alpha * (1 + losses.task_weights(confidence, seen)) ** cfg.dynamic_gamma
    return per_task[task], {"confidence": confidence, "seen": seen}, per_task

  def _text_to_image_losses(self, params, model_state, out: Outputs, labels, t2i, rng):
    """Per-row L_cl(F) [B] (zero off the text-to-image rows) and {'matching': L_match(F_out)}."""
    variables = {"params": params, **model_state}
    scale = losses.logit_scale(params["logit_scale"])
    # Rows of other tasks are never positives: they only add negatives.
    contrast_labels = jnp.where(t2i, labels, -1 - jnp.arange(labels.shape[0]))
    contrastive = jnp.where(t2i, losses.symmetric_info_nce(out.feature, out.instruction.embedding, scale,
                                                           contrast_labels), 0.0)
    similarity = losses.similarity_logits(out.feature, out.instruction.embedding, 1.0)
    allowed = (labels[:, None] != labels[None, :]) & t2i[None, :] & t2i[:, None]
    image_rng, text_rng = jax.random.split(rng)
    negative_text, has_text = losses.hard_negatives(image_rng, similarity, allowed)
    negative_image, has_image = losses.hard_negatives(text_rng, similarity.T, allowed.T)
    tokens, mask = out.instruction.tokens, out.instruction.mask
    fused_negatives = self.net.apply(
        variables, jnp.concatenate([out.class_token, out.class_token[negative_image]]),
        jnp.concatenate([tokens[negative_text], tokens]), jnp.concatenate([mask[negative_text], mask]),
        method=InstructNet.fuse)
    logits = jnp.concatenate([out.match_logits, self.net.apply(variables, fused_negatives, method=InstructNet.match)])
    n = labels.shape[0]
    targets = jnp.concatenate([jnp.ones(n, jnp.int32), jnp.zeros(2 * n, jnp.int32)])
    valid = jnp.concatenate([t2i, t2i & has_text, t2i & has_image])
    return contrastive, {"matching": masked_mean(losses.cross_entropy_per_row(logits, targets), valid)}

  def encode_queries(self, params, model_state, images, token_ids, templates, kind) -> jax.Array:
    """F, L2-normalised, of images edited by their instructions (InstructNet.encode_queries)."""
    return self.net.apply({"params": params, **model_state}, images, token_ids, templates, kind,
                          method=InstructNet.encode_queries)

  def encode_captions(self, params, model_state, token_ids) -> jax.Array:
    """Text-to-image query features: the captions' embeddings, L2-normalised."""
    return self.net.apply({"params": params, **model_state}, token_ids, method=InstructNet.encode_captions)

  def encode_images(self, params, model_state, images) -> jax.Array:
    """F of images without an instruction."""
    n = images.shape[0]
    return self.encode_queries(params, model_state, images, jnp.zeros((n, self.tokens.context_length), jnp.int32),
                               jnp.zeros((n, *self.template.image_size, 3), jnp.uint8), jnp.full((n,), NONE))

  def encode_records(self, state, records: Sequence[Record], kind: str, batch_size: int) -> np.ndarray:
    """Features [N, D] of evaluation records of one query kind ('image' for galleries).

    Text queries: the text embedding of record.captions[0]. Image queries and
    gallery items: F of the image edited by its instruction (EvalInstructions).
    """
    self.check_query_kind(kind)
    if kind == "text":
      chunks = padded_chunks(self.tokens.batch([r.captions[0] for r in records]), batch_size)
      features = [self.compiled(self.encode_captions)(state.params, state.model_state, chunk) for chunk in chunks]
    else:
      instructions = EvalInstructions(records, kind)
      texts = padded_chunks(self.tokens.batch(instructions.texts), batch_size)
      kinds = padded_chunks(instructions.kinds, batch_size)
      images = eval_batches(records, self.vision.image_size, batch_size)
      templates = eval_batches(instructions, self.template.image_size, batch_size)
      encode = self.compiled(self.encode_queries)
      features = [encode(state.params, state.model_state, image, text, template, k)
                  for (image, _), (template, _), text, k in zip(images, templates, texts, kinds)]
    return np.asarray(jax.device_get(jnp.concatenate(features)), np.float32)[:len(records)]
