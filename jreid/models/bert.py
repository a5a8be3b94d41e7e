"""A BERT text encoder in Flax (post-LN, as Hugging Face's BertModel), its tokenizer, saving and loading.

Used as an instruction encoder (e.g. the MiniLM-L6 sentence model). Layout of
a converted model directory (`python -m jreid.convert bert` writes one):

    DIR/model_config.json   BertConfig fields, written last (marks a complete save)
    DIR/params/             Orbax checkpoint of the parameter tree
    DIR/tokenizer/          WordPiece tokenizer files (Hugging Face layout)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import tokenizers
import transformers

from jreid.models.clip import ACTIVATIONS, MLP, MultiHeadAttention, attention

CONFIG_FILE = "model_config.json"
PARAMS_DIR = "params"
TOKENIZER_DIR = "tokenizer"


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """Architecture of a BERT encoder (Hugging Face BertConfig names in comments)."""

  vocab_size: int = 30522
  width: int = 768  # hidden_size
  layers: int = 12  # num_hidden_layers
  heads: int = 12  # num_attention_heads
  mlp_dim: int = 3072  # intermediate_size
  max_positions: int = 512  # max_position_embeddings
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  activation: str = "gelu"  # hidden_act
  pad_token_id: int = 0
  dtype: str = "float32"
  param_dtype: str = "float32"

  def __post_init__(self):
    if self.width % self.heads:
      raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"activation {self.activation!r} is not one of {sorted(ACTIVATIONS)}")


class MaskedSelfAttention(MultiHeadAttention):
  """Self-attention over the tokens where mask [B, T] is True."""

  def __call__(self, x: jax.Array, *, mask: jax.Array) -> jax.Array:
    q, k, v = (self.split_heads(proj(x)) for proj in (self.query, self.key, self.value))
    out = attention(q, k, v, mask=mask[:, None, None, :])
    return self.out(self.merge_heads(out))


class BertLayer(nn.Module):
  """Post-LN block: ln_attn(x + attn(x)), then ln_mlp(x + mlp(x))."""

  config: BertConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    cfg = self.config
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    norm = lambda name: nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=dtype, param_dtype=param_dtype, name=name)
    x = norm("ln_attn")(x + MaskedSelfAttention(cfg.width, cfg.heads, dtype, param_dtype, name="attn")(x, mask=mask))
    mlp = MLP(cfg.width, cfg.mlp_dim, cfg.activation, dtype, param_dtype, name="mlp")
    return norm("ln_mlp")(x + mlp(x))


class Bert(nn.Module):
  """BERT encoder: token, position and (zero) token-type embeddings, LayerNorm, post-LN layers."""

  config: BertConfig

  @nn.compact
  def __call__(self, token_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Encodes int [B, L] ids (padding: config.pad_token_id).

    Returns:
      (tokens [B, L, width], mask [B, L]) the last hidden states and which
      positions hold a token.
    """
    cfg = self.config
    length = token_ids.shape[-1]
    if length > cfg.max_positions:
      raise ValueError(f"{length} tokens exceed max_positions {cfg.max_positions}")
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    embed = lambda size, name: nn.Embed(size, cfg.width, dtype=dtype, param_dtype=param_dtype,
                                        embedding_init=nn.initializers.normal(0.02), name=name)
    x = (embed(cfg.vocab_size, "token_embedding")(token_ids)
         + embed(cfg.max_positions, "pos_embedding")(jnp.arange(length))[None]
         + embed(cfg.type_vocab_size, "type_embedding")(jnp.zeros_like(token_ids)))
    x = nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=dtype, param_dtype=param_dtype, name="ln_embed")(x)
    mask = token_ids != cfg.pad_token_id
    for i in range(cfg.layers):
      x = BertLayer(cfg, name=f"layers_{i}")(x, mask)
    return x, mask


def mean_pool(tokens: jax.Array, mask: jax.Array) -> jax.Array:
  """The mean of tokens [B, L, D] over the positions where mask [B, L] is True (sentence-transformers)."""
  weights = mask.astype(jnp.float32)[..., None]
  return jnp.sum(tokens.astype(jnp.float32) * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1e-9)


def abstract_params(config: BertConfig) -> Any:
  """The parameter tree as jax.ShapeDtypeStruct leaves (no computation)."""
  return jax.eval_shape(lambda: Bert(config).init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32))["params"])


class WordPieceTokenizer:
  """Turns texts into fixed-length BERT token ids: [CLS] text [SEP], then padding."""

  def __init__(self, hf_tokenizer: transformers.PreTrainedTokenizerFast):
    self._hf = hf_tokenizer
    # A private copy: the transformers wrapper changes its backend's padding state.
    self._backend = tokenizers.Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    self._backend.no_padding()
    self._backend.no_truncation()
    self.vocab_size = len(hf_tokenizer)
    self.cls_token_id = hf_tokenizer.cls_token_id
    self.sep_token_id = hf_tokenizer.sep_token_id
    self.pad_token_id = hf_tokenizer.pad_token_id

  def encode(self, texts: str | Sequence[str], context_length: int = 64) -> np.ndarray:
    """int32 [B, context_length]; longer texts are truncated so that [SEP] is kept."""
    if isinstance(texts, str):
      texts = [texts]
    if context_length < 2:
      raise ValueError(f"context_length {context_length} leaves no room for [CLS] and [SEP]")
    ids = np.full((len(texts), context_length), self.pad_token_id, np.int32)
    for row, encoding in enumerate(self._backend.encode_batch(list(texts), add_special_tokens=False)):
      tokens = [self.cls_token_id, *encoding.ids[:context_length - 2], self.sep_token_id]
      ids[row, :len(tokens)] = tokens
    return ids

  def save(self, directory: str) -> None:
    self._hf.save_pretrained(directory)


def load_wordpiece_tokenizer(directory: str) -> WordPieceTokenizer:
  """A BERT tokenizer from a local directory (tokenizer.json or vocab.txt)."""
  names = set(os.listdir(directory)) if os.path.isdir(directory) else set()
  if not names & {"tokenizer.json", "vocab.txt"}:
    raise FileNotFoundError(f"no BERT tokenizer in {directory!r}: expected tokenizer.json or vocab.txt")
  return WordPieceTokenizer(transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True))


def save_bert(directory: str, config: BertConfig, params: Any, tokenizer: WordPieceTokenizer) -> None:
  """Writes a BERT model directory that load_bert reads (an existing save there is replaced)."""
  directory = os.path.abspath(directory)
  expected = jax.tree_util.tree_map(lambda x: tuple(x.shape), abstract_params(config))
  got = jax.tree_util.tree_map(lambda x: tuple(np.shape(x)), params)
  if expected != got:
    raise ValueError(f"parameters for {directory} do not match the config {config}")
  os.makedirs(directory, exist_ok=True)
  tokenizer.save(os.path.join(directory, TOKENIZER_DIR))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(directory, PARAMS_DIR), params, force=True)
  config_path = os.path.join(directory, CONFIG_FILE)
  with open(config_path + ".tmp", "w") as f:
    json.dump(dataclasses.asdict(config), f, indent=2)
  os.replace(config_path + ".tmp", config_path)


def load_bert_config(directory: str) -> BertConfig:
  """The config of a directory written by save_bert."""
  path = os.path.join(os.path.abspath(directory), CONFIG_FILE)
  if not (os.path.isfile(path) and os.path.isdir(os.path.join(os.path.dirname(path), PARAMS_DIR))):
    raise FileNotFoundError(
        f"{directory!r} is not a converted BERT model: expected {CONFIG_FILE}, {PARAMS_DIR}/ (Orbax) and "
        f"{TOKENIZER_DIR}/ there, as `python -m jreid.convert bert --dst DIR` writes them")
  with open(path) as f:
    return BertConfig(**json.load(f))


def load_bert(directory: str) -> tuple[BertConfig, Any, WordPieceTokenizer]:
  """(config, params on the first local device, tokenizer) of a directory written by save_bert."""
  config = load_bert_config(directory)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                                  abstract_params(config))
  with ocp.StandardCheckpointer() as checkpointer:
    params = checkpointer.restore(os.path.join(os.path.abspath(directory), PARAMS_DIR), target)
  return config, params, load_wordpiece_tokenizer(os.path.join(directory, TOKENIZER_DIR))
