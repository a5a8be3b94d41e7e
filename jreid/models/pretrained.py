"""Initialising a ReID model's towers from a converted CLIP directory."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
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


def merged_tower(loaded: Any, initial: Any, tower: str, own: tuple[str, ...] = ()) -> Any:
  """The tree of `initial` with the pretrained values `loaded` (host arrays) cast to its dtypes.

  Parameters named in `own` (the model's additions to the pretrained tower,
  e.g. Instruct-ReID's editing layers) keep their initial values where
  `loaded` lacks them. Any other difference of tree or shape is a ValueError
  naming the tower.
  """
  if isinstance(initial, dict):
    unknown = sorted(set(loaded) - set(initial))
    absent = sorted(set(initial) - set(loaded) - set(own))
    if unknown or absent:
      raise ValueError(f"{tower} tower: the pretrained parameters do not match the model (not in the model: "
                       f"{unknown}; not pretrained: {absent})")
    return {k: merged_tower(loaded[k], v, tower, own) if k in loaded else v for k, v in initial.items()}
  if np.shape(loaded) != initial.shape:
    raise ValueError(f"{tower} tower: a pretrained parameter of shape {np.shape(loaded)} replaces one of "
                     f"{initial.shape}")
  return jnp.asarray(loaded, initial.dtype)
