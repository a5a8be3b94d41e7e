"""Initialising a ReID model's towers from a converted CLIP directory."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from ml_collections import ConfigDict

from jreid.models.checkpoint_io import load_clip, load_clip_config
from jreid.models.clip import TextConfig, VisionConfig
from jreid.models.pos_embed import resize_pos_embed


def pretrained_tower_configs(model: ConfigDict) -> tuple[VisionConfig, TextConfig]:
  """The image and text towers of the converted CLIP that model.init names, the image tower at
  model.vision.image_size, both computing in model.vision's dtypes (only the config file is read)."""
  pretrained = load_clip_config(model.init)
  dtypes = dict(dtype=model.vision.dtype, param_dtype=model.vision.param_dtype)
  return (dataclasses.replace(pretrained.vision, image_size=tuple(model.vision.image_size), **dtypes),
          dataclasses.replace(pretrained.text, **dtypes))


def pretrained_towers(directory: str, image_sizes: dict[str, tuple[int, int]], text: bool = False) -> dict[str, Any]:
  """Host copies of a converted CLIP's towers, read once: its image tower under each name of `image_sizes`
  (position grid resized bicubically to that size), and with `text` its text tower as 'text'."""
  model, params, _ = load_clip(directory)
  towers = {}
  for name, image_size in image_sizes.items():
    vision = jax.tree_util.tree_map(np.asarray, params["vision"])
    src = model.config.vision.grid
    dst = dataclasses.replace(model.config.vision, image_size=tuple(image_size)).grid
    if src != dst:
      vision["pos_embedding"] = resize_pos_embed(vision["pos_embedding"], src, dst)
    towers[name] = vision
  if text:
    towers["text"] = jax.tree_util.tree_map(np.asarray, params["text"])
  return towers


def pretrained_vision_params(directory: str, image_size: tuple[int, int]) -> Any:
  """The image tower's parameters, position grid resized (bicubic) to image_size once."""
  return pretrained_towers(directory, {"vision": image_size})["vision"]
