"""Save and load a converted CLIP model: config, parameters and tokenizer.

Layout of a model directory:

    DIR/model_config.json   CLIPConfig.to_dict(), written last (marks a complete save)
    DIR/params/             Orbax checkpoint of the parameter tree
    DIR/tokenizer/          tokenizer files (see jreid.models.tokenizer)
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jreid.models.clip import CLIP, CLIPConfig, abstract_params
from jreid.models.tokenizer import Tokenizer, load_tokenizer

CONFIG_FILE = "model_config.json"
PARAMS_DIR = "params"
TOKENIZER_DIR = "tokenizer"


def save_clip(directory: str, config: CLIPConfig, params: Any,
              tokenizer: Tokenizer | str) -> None:
  """Writes a CLIP model directory that load_clip reads.

  Args:
    directory: created if missing; an existing save there is replaced.
    config: the model's config.
    params: the parameter tree (as CLIP(config).init returns under 'params').
    tokenizer: a Tokenizer, or a directory holding tokenizer files.
  """
  directory = os.path.abspath(directory)
  _check_params(config, params, f"parameters for {directory}")
  if isinstance(tokenizer, str):
    tokenizer = load_tokenizer(tokenizer)
  os.makedirs(directory, exist_ok=True)
  tokenizer.save(os.path.join(directory, TOKENIZER_DIR))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(directory, PARAMS_DIR), params, force=True)
  config_path = os.path.join(directory, CONFIG_FILE)
  with open(config_path + ".tmp", "w") as f:
    json.dump(config.to_dict(), f, indent=2)
  os.replace(config_path + ".tmp", config_path)


def load_clip_config(directory: str) -> CLIPConfig:
  """The architecture of the converted CLIP in `directory` (reads its config file only)."""
  config_path = os.path.join(directory, CONFIG_FILE)
  if not (os.path.isfile(config_path) and os.path.isdir(os.path.join(directory, PARAMS_DIR))):
    raise FileNotFoundError(
        f"{directory!r} is not a converted CLIP model: expected {CONFIG_FILE}, {PARAMS_DIR}/ "
        f"(Orbax) and {TOKENIZER_DIR}/ there, as `python -m jreid.convert clip --dst DIR` "
        "or jreid.models.save_clip write them")
  with open(config_path) as f:
    return CLIPConfig.from_dict(json.load(f))


def load_clip(directory: str, dtype: str | None = None) -> tuple[CLIP, Any, Tokenizer]:
  """Loads (model, params, tokenizer) from a directory written by save_clip.

  Args:
    directory: a model directory (`python -m jreid.convert clip` writes one).
    dtype: compute dtype to use instead of the saved one (e.g. 'bfloat16');
      the parameters keep their saved dtype.

  Returns:
    The CLIP module, its parameters (on the first local device; re-shard
    them as the run needs), and the tokenizer.
  """
  directory = os.path.abspath(directory)
  config = load_clip_config(directory)
  params_path = os.path.join(directory, PARAMS_DIR)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract_params(config))
  with ocp.StandardCheckpointer() as checkpointer:
    params = checkpointer.restore(params_path, target)
  if dtype is not None:
    config = config.with_dtype(dtype)
  tokenizer = load_tokenizer(os.path.join(directory, TOKENIZER_DIR))
  return CLIP(config), params, tokenizer


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  return {jax.tree_util.keystr(path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _check_params(config: CLIPConfig, params: Any, what: str) -> None:
  """Raises ValueError unless params has the tree and shapes config implies."""
  expected, got = _shapes(abstract_params(config)), _shapes(params)
  problems = [f"{key} missing" for key in expected.keys() - got.keys()]
  problems += [f"{key} unexpected" for key in got.keys() - expected.keys()]
  problems += [f"{key} is {got[key]}, expected {shape}"
               for key, shape in expected.items() if key in got and got[key] != shape]
  if problems:
    raise ValueError(f"{what} do not match the config: " + "; ".join(sorted(problems)[:20]))
