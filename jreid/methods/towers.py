"""Which towers a method builds: an export's (jreid.methods.export), a converted CLIP's, or config.model's."""

from __future__ import annotations

from ml_collections import ConfigDict

from jreid.methods.export import exported_towers
from jreid.models.clip import TextConfig, VisionConfig
from jreid.models.pretrained import pretrained_tower_configs
from jreid.models.tokenizer import Tokenizer


def vision_tower(config: ConfigDict) -> VisionConfig:
  """The image tower: an export's, else that of the converted CLIP config.model.init names (at
  model.vision's image size and dtypes), else config.model.vision."""
  towers = exported_towers(config)
  if towers is not None:
    return VisionConfig(**towers["vision"])
  if config.model.init:
    return pretrained_tower_configs(config.model)[0]
  return VisionConfig(**config.model.vision.to_dict())


def local_text_tower(model: ConfigDict, vision: VisionConfig, tokenizer: Tokenizer) -> TextConfig:
  """A from-scratch text tower of model.text, sized for the tokenizer, in the image tower's dtypes,
  projecting to model.text.embed_dim (default: the image tower's)."""
  text = TextConfig(**{"embed_dim": vision.embed_dim, **model.text.to_dict(), "vocab_size": tokenizer.vocab_size,
                       "eot_token_id": tokenizer.eot_token_id, "dtype": vision.dtype,
                       "param_dtype": vision.param_dtype})
  check_embed_dims(vision, text)
  return text


def check_embed_dims(vision: VisionConfig, text: TextConfig) -> None:
  """Image and text features are compared: both towers must project to one embed_dim."""
  if vision.embed_dim != text.embed_dim:
    raise ValueError(f"the towers' embed_dim differ: vision {vision.embed_dim}, text {text.embed_dim}")


def clip_towers(config: ConfigDict, tokenizer: Tokenizer) -> tuple[VisionConfig, TextConfig]:
  """A CLIP-style method's (image, text) towers: an export's, else the converted CLIP's, else config.model's."""
  towers = exported_towers(config)
  if towers is not None:
    vision, text = VisionConfig(**towers["vision"]), TextConfig(**towers["text"])
  elif config.model.init:
    vision, text = pretrained_tower_configs(config.model)
  else:
    vision = vision_tower(config)
    text = local_text_tower(config.model, vision, tokenizer)
  check_embed_dims(vision, text)
  return vision, text
