"""jreid.models: Flax encoders, their tokenizer, and loading/saving of converted models."""

from jreid.models.checkpoint_io import load_clip, save_clip
from jreid.models.clip import (
    CLIP,
    CLIP_MEAN,
    CLIP_STD,
    CLIPConfig,
    EncoderOutput,
    MultiHeadAttention,
    ResidualAttentionBlock,
    TextConfig,
    TextTransformer,
    Transformer,
    VisionConfig,
    VisionTransformer,
    abstract_params,
    init_params,
)
from jreid.models.pos_embed import resize_pos_embed
from jreid.models.tokenizer import Tokenizer, build_local_tokenizer, load_tokenizer

__all__ = [
    "CLIP",
    "CLIP_MEAN",
    "CLIP_STD",
    "CLIPConfig",
    "EncoderOutput",
    "MultiHeadAttention",
    "ResidualAttentionBlock",
    "TextConfig",
    "TextTransformer",
    "Tokenizer",
    "Transformer",
    "VisionConfig",
    "VisionTransformer",
    "abstract_params",
    "build_local_tokenizer",
    "init_params",
    "load_clip",
    "load_tokenizer",
    "resize_pos_embed",
    "save_clip",
]
