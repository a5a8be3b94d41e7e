"""Instruct-ReID's network: the editing (or plain) image tower, instruction encoders, fusion E_f and heads.

Retrieval uses F, the projected class token (plus the caption's embedding on
text+sketch rows); F_out, the attention fusion of the class token with the
instruction tokens, carries the second set of losses and the image-text
matching logits (paper eq. 7-8).
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from jreid.methods.instruct.kinds import CAPTION, FUSION, TEMPLATE, TEXT, StepParts
from jreid.models import bert as bert_lib
from jreid.models.clip import EncoderOutput, TextConfig, TextTransformer, VisionConfig, VisionTransformer
from jreid.models.editing import AttentionFusion, EditingVisionTransformer
from jreid.models.preprocess import normalize_images
from jreid.models.reid_head import BNNeckHead
from jreid.ops import l2_normalize


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
    return self.vision(x, None) if self.editing else self.vision(x)

  def encode_instruction(self, token_ids: jax.Array, templates: jax.Array, kind: jax.Array,
                         parts: StepParts | None = None) -> Instruction:
    """Sentences (kind TEXT, CAPTION, FUSION) or template images (kind TEMPLATE) of each row.

    parts (training, known per batch): the text and template towers run only
    where parts says a row uses them. None (inference): the text tower runs,
    and the template tower only when some row has a template (a run-time
    branch, slower than a skip known at compile time).
    """
    if parts is None or parts.text:
      text_tokens, text_mask, text_embedding = self.encode_text(token_ids)
      text_tokens = self.text_adapter(text_tokens)
    else:  # no row's tokens are attended to nor its embedding used
      text_tokens = jnp.zeros((*token_ids.shape, self.vision_config.width), jnp.dtype(self.vision_config.dtype))
      text_mask = jnp.zeros(token_ids.shape, bool)
      text_embedding = jnp.zeros((token_ids.shape[0], self.vision_config.embed_dim), jnp.float32)
    is_text = (kind == TEXT) | (kind == CAPTION) | (kind == FUSION)
    is_template = kind == TEMPLATE
    t = self.vision_config if self.shared_template else self.template_config
    dtype = jnp.dtype(t.dtype)
    encoded = lambda net, x: jax.tree.map(lambda y: y.astype(dtype), net.encode_template(x))
    skipped = lambda net, x: EncoderOutput(jnp.zeros((x.shape[0], t.grid[0] * t.grid[1] + 1, t.width), dtype),
                                           jnp.zeros((x.shape[0], t.width), dtype),
                                           jnp.zeros((x.shape[0], t.embed_dim), dtype))
    if self.is_initializing() or (parts is not None and parts.template):  # init: create the parameters
      template = encoded(self, templates)
    elif parts is not None:
      template = skipped(self, templates)
    else:
      template = nn.cond(jnp.any(is_template), encoded, skipped, self, templates)
    tokens = jnp.concatenate([text_tokens, self.template_adapter(template.tokens)], axis=1)
    mask = jnp.concatenate([text_mask & is_text[:, None],
                            jnp.broadcast_to(is_template[:, None], template.tokens.shape[:2])], axis=1)
    embedding = jnp.where(is_template[:, None], template.embedding.astype(jnp.float32),
                          text_embedding.astype(jnp.float32))
    return Instruction(tokens, mask, embedding)

  def encode_image(self, images: jax.Array, instruction: Instruction, kind: jax.Array,
                   edit: bool = True) -> EncoderOutput:
    """uint8 images [B, H, W, 3], edited by the instructions of rows of kind TEXT or TEMPLATE (edit=False: a
    batch without such rows skips the editing layers)."""
    x = normalize_images(images, jnp.dtype(self.vision_config.dtype))
    if not self.editing:
      return self.vision(x)
    if not edit:
      return self.vision(x, None)
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
               train: bool = False, parts: StepParts | None = None) -> Outputs:
    """parts: what the batch's rows use (kinds.step_parts), None: all of it."""
    instruction = self.encode_instruction(token_ids, templates, kind, parts)
    image = self.encode_image(images, instruction, kind, parts is None or parts.edit)
    feature = self.feature(image, instruction, kind)
    fused = self.fuse(image.feature, instruction.tokens, instruction.mask)
    _, logits = self.head(feature, train)
    _, fused_logits = self.fused_head(fused, train)
    return Outputs(feature, fused, logits, fused_logits, self.match(fused), instruction, image.feature)
