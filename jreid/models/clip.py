"""CLIP-style image and text encoders as Flax linen modules.

Images are float [B, H, W, 3], already normalised with CLIP_MEAN / CLIP_STD.
Token ids are int [B, L] as `jreid.models.tokenizer.Tokenizer.encode` makes
them. Both towers return an `EncoderOutput`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

# Per-channel RGB mean and std (of pixels in [0, 1]) the CLIP encoders expect.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def quick_gelu(x: jax.Array) -> jax.Array:
  """The sigmoid approximation of GELU that OpenAI CLIP was trained with."""
  return x * jax.nn.sigmoid(1.702 * x)


def exact_gelu(x: jax.Array) -> jax.Array:
  """GELU with the exact (erf) form, as torch's nn.GELU()."""
  return jax.nn.gelu(x, approximate=False)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "quick_gelu": quick_gelu,
    "gelu": exact_gelu,
}


# Which attention kernel `attention` uses: 'auto' (cuDNN's fused kernel where
# it applies, else XLA's), 'xla' or 'cudnn'. Read at trace time, so that a
# benchmark can compare them: JREID_ATTENTION=xla python -m jreid.bench ...
ATTENTION_ENV = "JREID_ATTENTION"


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, mask: jax.Array | None = None,
              is_causal: bool = False) -> jax.Array:
  """Scaled dot-product attention of q [B, T, N, H] over k, v [B, S, N, H].

  On GPUs, bf16/fp16 inputs with head size a multiple of 8 up to 128 and no
  mask use cuDNN's fused (flash) attention, with the sequences padded to a
  multiple of 8 (cuDNN trains on even lengths only; the padded keys are
  masked out by their lengths); everything else uses XLA's.
  """
  choice = os.environ.get(ATTENTION_ENV, "auto")
  if choice not in ("auto", "xla", "cudnn"):
    raise ValueError(f"{ATTENTION_ENV} must be 'auto', 'xla' or 'cudnn', got {choice!r}")
  fits_cudnn = (jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16)
                and q.shape[-1] % 8 == 0 and q.shape[-1] <= 128 and mask is None)
  if not (choice == "cudnn" or (choice == "auto" and fits_cudnn)):
    return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, implementation="xla")
  length, keys = q.shape[1], k.shape[1]
  pad = lambda x: jnp.pad(x, ((0, 0), (0, -x.shape[1] % 8), (0, 0), (0, 0)))  # noqa: E731
  padded_keys_seen = keys % 8 and not (is_causal and length == keys)  # causal rows never see later keys
  lengths = jnp.full((k.shape[0],), keys, jnp.int32) if padded_keys_seen else None
  out = jax.nn.dot_product_attention(pad(q), pad(k), pad(v), mask=mask, is_causal=is_causal,
                                     key_value_seq_lengths=lengths, implementation="cudnn")
  return out[:, :length]


def _check_transformer_shape(cfg: VisionConfig | TextConfig) -> None:
  if cfg.width % cfg.heads:
    raise ValueError(f"width {cfg.width} is not divisible by heads {cfg.heads}")
  if cfg.activation not in ACTIVATIONS:
    raise ValueError(f"activation {cfg.activation!r} is not one of {sorted(ACTIVATIONS)}")


STEMS = ("patch", "conv")
STEM_GROUPS = 8  # GroupNorm groups of the conv stem (stem_width must be a multiple)
POOLS = ("token", "mean")


@dataclasses.dataclass(frozen=True)
class VisionConfig:
  """ViT image encoder; image_size is (height, width) in pixels."""

  image_size: tuple[int, int] = (224, 224)
  patch_size: int = 16
  width: int = 768
  layers: int = 12
  heads: int = 12
  mlp_dim: int = 3072
  embed_dim: int = 512
  dtype: str = "float32"
  param_dtype: str = "float32"
  activation: str = "quick_gelu"
  layer_norm_eps: float = 1e-5
  # How images become patch tokens: 'patch', one linear projection per patch (CLIP's; what converted
  # checkpoints hold), or 'conv', log2(patch_size) stages of 3x3 stride-2 convolutions (`ConvStem`).
  stem: str = "patch"
  stem_width: int = 32  # conv stem: channels of the first stage, doubled at each further stage
  stem_blocks: int = 0  # conv stem: residual 3x3 blocks after each stage's strided convolution
  # The pooled feature: 'token', the class token (CLIP's), or 'mean', the mean of the patch tokens.
  pool: str = "token"

  def __post_init__(self):
    object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
    if len(self.image_size) != 2 or any(s % self.patch_size for s in self.image_size):
      raise ValueError(
          f"image_size {self.image_size} must be (H, W), both multiples of patch_size "
          f"{self.patch_size}")
    if self.stem not in STEMS:
      raise ValueError(f"stem {self.stem!r} is not one of {STEMS}")
    if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
      raise ValueError(f"the conv stem needs a power-of-two patch_size, got {self.patch_size}")
    if self.stem == "conv" and self.stem_width % STEM_GROUPS:
      raise ValueError(f"stem_width {self.stem_width} is not a multiple of the stem's {STEM_GROUPS} groups")
    if self.pool not in POOLS:
      raise ValueError(f"pool {self.pool!r} is not one of {POOLS}")
    _check_transformer_shape(self)

  @property
  def stem_stages(self) -> int:
    """Stride-2 stages of the conv stem: log2(patch_size)."""
    return self.patch_size.bit_length() - 1

  @property
  def grid(self) -> tuple[int, int]:
    """Patch grid (rows, columns)."""
    return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size


@dataclasses.dataclass(frozen=True)
class TextConfig:
  """Causal text encoder pooled at the first end-of-text token."""

  vocab_size: int = 49408
  context_length: int = 77
  width: int = 512
  layers: int = 12
  heads: int = 8
  mlp_dim: int = 2048
  embed_dim: int = 512
  eot_token_id: int = 49407
  dtype: str = "float32"
  param_dtype: str = "float32"
  activation: str = "quick_gelu"
  layer_norm_eps: float = 1e-5

  def __post_init__(self):
    _check_transformer_shape(self)


@dataclasses.dataclass(frozen=True)
class CLIPConfig:
  """Both towers plus the initial log logit scale (log(1/0.07))."""

  vision: VisionConfig = dataclasses.field(default_factory=VisionConfig)
  text: TextConfig = dataclasses.field(default_factory=TextConfig)
  logit_scale_init: float = math.log(1 / 0.07)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> CLIPConfig:
    return cls(
        vision=VisionConfig(**d["vision"]),
        text=TextConfig(**d["text"]),
        logit_scale_init=d["logit_scale_init"])

  def with_dtype(self, dtype: str) -> CLIPConfig:
    """The same model computing in `dtype` (parameters keep their dtype)."""
    return dataclasses.replace(
        self,
        vision=dataclasses.replace(self.vision, dtype=dtype),
        text=dataclasses.replace(self.text, dtype=dtype))


@flax.struct.dataclass
class EncoderOutput:
  """What a tower returns.

  tokens: [B, T, width] final tokens after the last LayerNorm (ln_post / ln_final).
  feature: [B, width] the pooled token (class token / first end-of-text token).
  embedding: [B, embed_dim] the projected feature (the CLIP embedding).
  """

  tokens: jax.Array
  feature: jax.Array
  embedding: jax.Array


class MultiHeadAttention(nn.Module):
  """Multi-head self-attention with separate query/key/value/out projections.

  Subclasses that attend to extra keys/values (e.g. projected instruction
  tokens) reuse `query`, `key`, `value`, `out`, `split_heads` and `merge_heads`.
  """

  width: int
  heads: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    self.query = self.dense()
    self.key = self.dense()
    self.value = self.dense()
    self.out = self.dense()

  def dense(self) -> nn.Dense:
    """A new projection to width features in this module's dtypes."""
    return nn.Dense(self.width, dtype=self.dtype, param_dtype=self.param_dtype)

  def split_heads(self, x: jax.Array) -> jax.Array:
    """[..., T, width] -> [..., T, heads, head_dim]."""
    return x.reshape(*x.shape[:-1], self.heads, self.width // self.heads)

  def merge_heads(self, x: jax.Array) -> jax.Array:
    """[..., T, heads, head_dim] -> [..., T, width]."""
    return x.reshape(*x.shape[:-2], self.width)

  def __call__(self, x: jax.Array, *, causal: bool = False) -> jax.Array:
    q, k, v = (self.split_heads(proj(x)) for proj in (self.query, self.key, self.value))
    return self.out(self.merge_heads(attention(q, k, v, is_causal=causal)))


class MLP(nn.Module):
  """width -> mlp_dim -> activation -> width."""

  width: int
  mlp_dim: int
  activation: str = "quick_gelu"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype, name="fc1")(x)
    x = ACTIVATIONS[self.activation](x)
    return nn.Dense(self.width, dtype=self.dtype, param_dtype=self.param_dtype, name="fc2")(x)


class ResidualAttentionBlock(nn.Module):
  """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

  `attention` picks the attention class; keyword arguments of the call go to it.
  """

  width: int
  heads: int
  mlp_dim: int
  activation: str = "quick_gelu"
  layer_norm_eps: float = 1e-5
  attention: type[MultiHeadAttention] = MultiHeadAttention
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    norm = functools.partial(nn.LayerNorm, epsilon=self.layer_norm_eps, dtype=self.dtype,
                             param_dtype=self.param_dtype)
    self.ln_1 = norm()
    self.attn = self.attention(width=self.width, heads=self.heads, dtype=self.dtype,
                               param_dtype=self.param_dtype)
    self.ln_2 = norm()
    self.mlp = MLP(width=self.width, mlp_dim=self.mlp_dim, activation=self.activation,
                   dtype=self.dtype, param_dtype=self.param_dtype)

  def __call__(self, x: jax.Array, **attention_kwargs) -> jax.Array:
    x = x + self.attn(self.ln_1(x), **attention_kwargs)
    return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
  """A stack of ResidualAttentionBlocks (parameters `blocks_0`, `blocks_1`, ...)."""

  width: int
  layers: int
  heads: int
  mlp_dim: int
  causal: bool = False
  activation: str = "quick_gelu"
  layer_norm_eps: float = 1e-5
  attention: type[MultiHeadAttention] = MultiHeadAttention
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    self.blocks = [
        ResidualAttentionBlock(
            width=self.width, heads=self.heads, mlp_dim=self.mlp_dim, activation=self.activation,
            layer_norm_eps=self.layer_norm_eps, attention=self.attention, dtype=self.dtype,
            param_dtype=self.param_dtype)
        for _ in range(self.layers)
    ]

  def __call__(self, x: jax.Array, **attention_kwargs) -> jax.Array:
    for block in self.blocks:
      x = block(x, causal=self.causal, **attention_kwargs)
    return x


def _transformer(cfg: VisionConfig | TextConfig, causal: bool,
                 attention: type[MultiHeadAttention] = MultiHeadAttention) -> Transformer:
  return Transformer(
      width=cfg.width, layers=cfg.layers, heads=cfg.heads, mlp_dim=cfg.mlp_dim, causal=causal,
      activation=cfg.activation, layer_norm_eps=cfg.layer_norm_eps, attention=attention, dtype=jnp.dtype(cfg.dtype),
      param_dtype=jnp.dtype(cfg.param_dtype))


def _layer_norm(cfg: VisionConfig | TextConfig) -> nn.LayerNorm:
  return nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=jnp.dtype(cfg.dtype),
                      param_dtype=jnp.dtype(cfg.param_dtype))


def _projection(cfg: VisionConfig | TextConfig) -> nn.Dense:
  return nn.Dense(cfg.embed_dim, use_bias=False, dtype=jnp.dtype(cfg.dtype),
                  param_dtype=jnp.dtype(cfg.param_dtype),
                  kernel_init=nn.initializers.normal(cfg.width**-0.5))


class ConvStem(nn.Module):
  """Early convolutions (Xiao et al. 2021) down to the patch grid: [B, H, W, 3] -> [B, H/p, W/p, width].

  log2(p) stages, each a 3x3 stride-2 convolution (padding 1) + GroupNorm + ReLU followed
  by `blocks` residual blocks (conv-norm-ReLU-conv-norm, the last norm's scale
  zero at init, then ReLU), then a 1x1 convolution to the transformer width.
  GroupNorm, not BatchNorm, keeps the tower free of batch statistics, so
  photos, sketches and templates can be encoded in batches of their own.
  """

  config: VisionConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    conv = functools.partial(nn.Conv, kernel_size=(3, 3), padding=1, use_bias=False, dtype=dtype,
                             param_dtype=param_dtype)
    norm = functools.partial(nn.GroupNorm, num_groups=STEM_GROUPS, dtype=dtype, param_dtype=param_dtype)
    for stage in range(cfg.stem_stages):
      channels = cfg.stem_width * 2**stage
      x = nn.relu(norm(name=f"norm_{stage}")(conv(channels, strides=(2, 2), name=f"conv_{stage}")(x)))
      for b in range(cfg.stem_blocks):
        name = f"block_{stage}_{b}"
        y = nn.relu(norm(name=f"{name}_norm_1")(conv(channels, name=f"{name}_conv_1")(x)))
        y = norm(scale_init=nn.initializers.zeros, name=f"{name}_norm_2")(conv(channels, name=f"{name}_conv_2")(y))
        x = nn.relu(x + y)
    return nn.Conv(cfg.width, (1, 1), dtype=dtype, param_dtype=param_dtype, name="proj")(x)


def patch_embedding(cfg: VisionConfig, name: str | None = None) -> nn.Module:
  """The module that turns images [B, H, W, 3] into patch embeddings [B, rows, columns, width] (cfg.stem)."""
  if cfg.stem == "conv":
    return ConvStem(cfg, name=name)
  patch = (cfg.patch_size, cfg.patch_size)
  return nn.Conv(cfg.width, patch, strides=patch, padding="VALID", use_bias=False, dtype=jnp.dtype(cfg.dtype),
                 param_dtype=jnp.dtype(cfg.param_dtype), name=name)


class VisionTransformer(nn.Module):
  """ViT: patch embedding (`patch_embedding`), class token, learned positions, pre-LN blocks.

  `attention` picks the blocks' attention class; extra keyword arguments of
  the call go to it (jreid.models.editing.EditingVisionTransformer).
  """

  config: VisionConfig
  attention: type[MultiHeadAttention] = MultiHeadAttention

  def setup(self):
    cfg = self.config
    param_dtype = jnp.dtype(cfg.param_dtype)
    self.patch_embed = patch_embedding(cfg)
    init = nn.initializers.normal(cfg.width**-0.5)
    self.class_embedding = self.param("class_embedding", init, (cfg.width,), param_dtype)
    num_tokens = cfg.grid[0] * cfg.grid[1] + 1
    self.pos_embedding = self.param("pos_embedding", init, (num_tokens, cfg.width), param_dtype)
    self.ln_pre = _layer_norm(cfg)
    self.transformer = _transformer(cfg, causal=False, attention=self.attention)
    self.ln_post = _layer_norm(cfg)
    self.proj = _projection(cfg)

  def __call__(self, images: jax.Array, extra_embedding: jax.Array | None = None,
               **attention_kwargs) -> EncoderOutput:
    """Encodes [B, H, W, 3] images.

    Args:
      images: normalised images of the configured image_size.
      extra_embedding: optional [B, 1 or T, width] term added with the position
        embedding (camera / scenario embeddings).

    Returns:
      EncoderOutput; `feature` is the class token after ln_post, or the mean
      of the patch tokens (config.pool).
    """
    cfg = self.config
    if tuple(images.shape[1:]) != (*cfg.image_size, 3):
      raise ValueError(f"expected images [B, {cfg.image_size[0]}, {cfg.image_size[1]}, 3], "
                       f"got {images.shape}")
    return self.encode_patches(self.patch_embed(images), extra_embedding, **attention_kwargs)

  def encode_patches(self, patches: jax.Array, extra_embedding: jax.Array | None = None,
                     **attention_kwargs) -> EncoderOutput:
    """Encodes patch embeddings [B, rows, columns, width] (what `patch_embed` makes of the images).

    Front ends other than `patch_embed` (e.g. one patch embedding per image
    group) call this with their own patch embeddings.
    """
    cfg = self.config
    dtype = jnp.dtype(cfg.dtype)
    x = patches.reshape(patches.shape[0], -1, cfg.width)
    cls = jnp.broadcast_to(self.class_embedding.astype(dtype), (x.shape[0], 1, cfg.width))
    x = jnp.concatenate([cls, x], axis=1) + self.pos_embedding.astype(dtype)
    if extra_embedding is not None:
      x = x + extra_embedding.astype(dtype)
    x = self.transformer(self.ln_pre(x), **attention_kwargs)
    tokens = self.ln_post(x)
    feature = tokens[:, 0] if cfg.pool == "token" else tokens[:, 1:].mean(axis=1)
    return EncoderOutput(tokens=tokens, feature=feature, embedding=self.proj(feature))


class TextTransformer(nn.Module):
  """Causal transformer pooled at the first end-of-text token of each row."""

  config: TextConfig

  def setup(self):
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    self.token_embedding = nn.Embed(cfg.vocab_size, cfg.width, dtype=dtype, param_dtype=param_dtype,
                                    embedding_init=nn.initializers.normal(0.02))
    self.pos_embedding = self.param("pos_embedding", nn.initializers.normal(0.01),
                                    (cfg.context_length, cfg.width), param_dtype)
    self.transformer = _transformer(cfg, causal=True)
    self.ln_final = _layer_norm(cfg)
    self.proj = _projection(cfg)

  def __call__(self, token_ids: jax.Array,
               input_embeddings: jax.Array | None = None) -> EncoderOutput:
    """Encodes [B, L] token ids (L <= context_length).

    Args:
      token_ids: ids with an end-of-text token in each row (pooling position;
        row position 0 is used for a row without one).
      input_embeddings: optional [B, L, width] used instead of the token
        embeddings of `token_ids` (prompt learning).

    Returns:
      EncoderOutput; `feature` is the first end-of-text token after ln_final.
    """
    cfg = self.config
    length = token_ids.shape[-1]
    if length > cfg.context_length:
      raise ValueError(f"{length} tokens exceed context_length {cfg.context_length}")
    if input_embeddings is None:
      input_embeddings = self.token_embedding(token_ids)
    dtype = jnp.dtype(cfg.dtype)
    x = input_embeddings.astype(dtype) + self.pos_embedding[:length].astype(dtype)
    tokens = self.ln_final(self.transformer(x))
    eot = jnp.argmax(token_ids == cfg.eot_token_id, axis=-1)
    feature = jnp.take_along_axis(tokens, eot[:, None, None], axis=1)[:, 0]
    return EncoderOutput(tokens=tokens, feature=feature, embedding=self.proj(feature))


class CLIP(nn.Module):
  """Image tower `vision`, text tower `text` and a learned log logit scale."""

  config: CLIPConfig

  def setup(self):
    self.vision = VisionTransformer(self.config.vision)
    self.text = TextTransformer(self.config.text)
    self.logit_scale = self.param(
        "logit_scale", nn.initializers.constant(self.config.logit_scale_init), (), jnp.float32)

  def encode_image(self, images: jax.Array,
                   extra_embedding: jax.Array | None = None) -> EncoderOutput:
    return self.vision(images, extra_embedding)

  def encode_text(self, token_ids: jax.Array,
                  input_embeddings: jax.Array | None = None) -> EncoderOutput:
    return self.text(token_ids, input_embeddings)

  def __call__(self, images: jax.Array,
               token_ids: jax.Array) -> tuple[EncoderOutput, EncoderOutput, jax.Array]:
    """Returns (image output, text output, log logit scale)."""
    return self.encode_image(images), self.encode_text(token_ids), self.logit_scale


def dummy_inputs(config: CLIPConfig, batch: int = 1) -> tuple[jax.Array, jax.Array]:
  """Zero images and token ids of the configured shapes."""
  h, w = config.vision.image_size
  return (jnp.zeros((batch, h, w, 3), jnp.float32),
          jnp.zeros((batch, config.text.context_length), jnp.int32))


def init_params(config: CLIPConfig, rng: jax.Array) -> dict[str, Any]:
  """Randomly initialised CLIP parameters."""
  return jax.jit(CLIP(config).init)(rng, *dummy_inputs(config))["params"]


def abstract_params(config: CLIPConfig) -> dict[str, Any]:
  """The parameter tree as jax.ShapeDtypeStruct leaves (no computation)."""
  return jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
