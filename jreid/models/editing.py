"""Instruct-ReID's editing transformer and attention-fusion module (paper sec. 4.2, eq. 1-4).

In every block of the editing transformer the image tokens attend over their
own keys/values and, through a per-head gate tanh(g) with g initialised to
zero, over keys/values projected from the instruction features:

    attn = softmax(Q K^T / sqrt(d)) V + tanh(g) * softmax(Q K'^T / sqrt(d)) V'

so that at initialisation the tower is the plain ViT whatever the
instruction. Parameter names are those of `clip.VisionTransformer` plus
`instruction_key`, `instruction_value` and `gate` in each block's `attn`, so
a converted CLIP image tower initialises it directly.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jreid.models.clip import MLP, EncoderOutput, MultiHeadAttention, VisionTransformer, attention

EDITING_PARAMS = ("instruction_key", "instruction_value", "gate")  # EditingAttention's beyond a plain ViT's


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
  """Attention of q [B, T, N, H] over k, v [B, S, N, H] where mask [B, S]; zero for rows with no valid key."""
  out = attention(q, k, v, mask=mask[:, None, None, :])
  return jnp.where(jnp.any(mask, axis=-1)[:, None, None, None], out, 0).astype(q.dtype)


class EditingAttention(MultiHeadAttention):
  """Self-attention that also attends over instruction tokens, gated per head by tanh(gate), gate = 0 at init."""

  def setup(self):
    super().setup()
    self.instruction_key = self.dense()
    self.instruction_value = self.dense()
    self.gate = self.param("gate", nn.initializers.zeros, (self.heads,), self.param_dtype)

  def __call__(self, x: jax.Array, *, causal: bool = False, instruction: jax.Array | None = None,
               instruction_mask: jax.Array | None = None) -> jax.Array:
    """x [B, T, width]; instruction [B, S, any width] with instruction_mask [B, S] (True = a token)."""
    q, k, v = (self.split_heads(proj(x)) for proj in (self.query, self.key, self.value))
    out = attention(q, k, v, is_causal=causal)
    if instruction is not None:
      k_instruction = self.split_heads(self.instruction_key(instruction))
      v_instruction = self.split_heads(self.instruction_value(instruction))
      edit = _attend(q, k_instruction, v_instruction, instruction_mask)
      out = out + jnp.tanh(self.gate).astype(out.dtype)[:, None] * edit
    return self.out(self.merge_heads(out))


class EditingVisionTransformer(VisionTransformer):
  """The ViT of `clip.VisionTransformer` (same parameters, plus the editing layers) whose blocks use
  EditingAttention."""

  attention: type[MultiHeadAttention] = EditingAttention

  def __call__(self, images: jax.Array, instruction: jax.Array | None,
               instruction_mask: jax.Array | None = None) -> EncoderOutput:
    """Encodes normalised images [B, H, W, 3] edited by instruction tokens [B, S, D] (mask [B, S]); None: no
    row has an instruction, and the blocks skip the editing layers (the same result as an all-False mask)."""
    if instruction is None:
      return super().__call__(images)
    return super().__call__(images, instruction=instruction.astype(jnp.dtype(self.config.dtype)),
                            instruction_mask=instruction_mask)


class CrossAttention(MultiHeadAttention):
  """Queries from x, keys and values from a masked memory."""

  def __call__(self, x: jax.Array, memory: jax.Array, memory_mask: jax.Array) -> jax.Array:
    q = self.split_heads(self.query(x))
    k, v = self.split_heads(self.key(memory)), self.split_heads(self.value(memory))
    return self.out(self.merge_heads(_attend(q, k, v, memory_mask)))


class AttentionFusion(nn.Module):
  """E_f: the image feature F attends over the instruction tokens; returns F_out [B, embed_dim].

  Pre-LN cross-attention blocks on the single query token F; rows without an
  instruction token pass through the MLPs alone.
  """

  width: int
  heads: int
  mlp_dim: int
  embed_dim: int
  layers: int = 1
  activation: str = "quick_gelu"
  layer_norm_eps: float = 1e-5
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feature: jax.Array, instruction: jax.Array, instruction_mask: jax.Array) -> jax.Array:
    """feature [B, width], instruction [B, S, any width], instruction_mask [B, S]."""
    dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
    norm = functools.partial(nn.LayerNorm, epsilon=self.layer_norm_eps, dtype=self.dtype,
                             param_dtype=self.param_dtype)
    memory = dense(self.width, name="memory")(instruction.astype(self.dtype))
    x = feature.astype(self.dtype)[:, None]
    for i in range(self.layers):
      x = x + CrossAttention(self.width, self.heads, self.dtype, self.param_dtype, name=f"attn_{i}")(
          norm(name=f"ln_attn_{i}")(x), memory, instruction_mask)
      x = x + MLP(self.width, self.mlp_dim, self.activation, self.dtype, self.param_dtype, name=f"mlp_{i}")(
          norm(name=f"ln_mlp_{i}")(x))
    x = norm(name="ln_out")(x[:, 0])
    return dense(self.embed_dim, use_bias=False, kernel_init=nn.initializers.normal(self.width**-0.5),
                 name="proj")(x)
