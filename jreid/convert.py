"""Convert external checkpoints into jreid model directories.

    python -m jreid.convert clip --src PATH --dst DIR [--image-size H,W] [--tokenizer DIR]
    python -m jreid.convert bert --src DIR --dst DIR
    python -m jreid.convert export --workdir RUN --dst DIR [--step N] [--dtype bf16|fp32]

`clip` reads a Hugging Face CLIPModel directory (config.json,
model.safetensors, tokenizer files) or an OpenAI CLIP checkpoint (a .pt/.pth
TorchScript archive or state dict, or a .safetensors file with OpenAI names),
and writes the directory that `jreid.models.load_clip` reads. Both sources
give the same parameter tree. `bert` reads a Hugging Face BERT directory
(config.json, model.safetensors or pytorch_model.bin, tokenizer files; tensor
names with or without the `bert.` prefix) and writes the directory that
`jreid.models.bert.load_bert` reads. `export` turns a training run's checkpoint
into the inference model directory that `jreid.load` reads (see
jreid.inference). Each subcommand registers itself in
`build_parser` through an `add_*_command(subparsers)` function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import zipfile
from typing import Any, Sequence

import numpy as np
import safetensors
import transformers

from jreid import cli, inference
from jreid.models import bert as bert_lib
from jreid.models import (
    CLIPConfig,
    TextConfig,
    Tokenizer,
    VisionConfig,
    load_tokenizer,
    resize_pos_embed,
    save_clip,
)

State = dict[str, np.ndarray]

# Tensor names of an OpenAI CLIP state dict -> Hugging Face CLIPModel names
# (applied in order; attention in_proj and the two projections are handled apart).
_OPENAI_TO_HF = (
    (r"^visual\.class_embedding$", "vision_model.embeddings.class_embedding"),
    (r"^visual\.positional_embedding$", "vision_model.embeddings.position_embedding.weight"),
    (r"^visual\.conv1\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual\.ln_pre\.", "vision_model.pre_layrnorm."),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm."),
    (r"^visual\.transformer\.resblocks\.", "vision_model.encoder.layers."),
    (r"^transformer\.resblocks\.", "text_model.encoder.layers."),
    (r"^token_embedding\.", "text_model.embeddings.token_embedding."),
    (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
    (r"^ln_final\.", "text_model.final_layer_norm."),
    (r"\.ln_1\.", ".layer_norm1."),
    (r"\.ln_2\.", ".layer_norm2."),
    (r"\.attn\.out_proj\.", ".self_attn.out_proj."),
    (r"\.mlp\.c_fc\.", ".mlp.fc1."),
    (r"\.mlp\.c_proj\.", ".mlp.fc2."),
)
# Metadata a TorchScript OpenAI checkpoint stores next to the weights.
_OPENAI_METADATA = ("input_resolution", "context_length", "vocab_size")


def read_safetensors(path: str) -> State:
  """Reads all tensors of a .safetensors file as float32."""
  with safetensors.safe_open(path, framework="numpy") as f:
    return {name: np.asarray(f.get_tensor(name), np.float32) for name in f.keys()}


def read_torch_checkpoint(path: str) -> State:
  """Reads a .pt/.pth state dict or TorchScript archive (needs PyTorch)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"reading {path} needs PyTorch: install the dev extra "
                      "(pip install 'jreid[dev]') or pass a .safetensors file") from e
  if _is_torchscript(path):  # OpenAI's released files; torch.jit.load is their only reader.
    state = torch.jit.load(path, map_location="cpu").state_dict()
  else:
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
  return {name: value.detach().float().numpy() for name, value in state.items()
          if name not in _OPENAI_METADATA}


def _is_torchscript(path: str) -> bool:
  if not zipfile.is_zipfile(path):
    return False
  with zipfile.ZipFile(path) as archive:
    return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_hf_directory(directory: str) -> tuple[State, transformers.CLIPConfig]:
  """Reads a Hugging Face CLIPModel directory (single-file or sharded safetensors)."""
  config_path = os.path.join(directory, "config.json")
  weights = os.path.join(directory, "model.safetensors")
  index = weights + ".index.json"
  if not os.path.isfile(config_path) or not (os.path.isfile(weights) or os.path.isfile(index)):
    raise FileNotFoundError(
        f"{directory!r} is not a Hugging Face CLIPModel directory: expected config.json and "
        "model.safetensors (or model.safetensors.index.json with its shards)")
  if os.path.isfile(weights):
    files = [weights]
  else:
    with open(index) as f:
      shards = sorted(set(json.load(f)["weight_map"].values()))
    files = [os.path.join(directory, name) for name in shards]
  state = {}
  for file in files:
    state.update(read_safetensors(file))
  return state, transformers.CLIPConfig.from_json_file(config_path)


def openai_to_hf_names(state: State) -> State:
  """Renames an OpenAI CLIP state dict to Hugging Face CLIPModel names and layouts."""
  out = {}
  for name, value in state.items():
    if name == "visual.proj":  # OpenAI computes x @ proj; HF stores Linear (out, in).
      out["visual_projection.weight"] = value.T
      continue
    if name == "text_projection":
      out["text_projection.weight"] = value.T
      continue
    for pattern, replacement in _OPENAI_TO_HF:
      name = re.sub(pattern, replacement, name)
    fused = re.fullmatch(r"(.*)\.attn\.in_proj_(weight|bias)", name)
    if fused:
      for proj, part in zip("qkv", np.split(value, 3)):
        out[f"{fused[1]}.self_attn.{proj}_proj.{fused[2]}"] = part
    else:
      out[name] = value
  return out


def _num_layers(state: State, tower: str) -> int:
  pattern = re.compile(rf"^{tower}\.encoder\.layers\.(\d+)\.")
  found = {int(m[1]) for m in map(pattern.match, state) if m}
  return max(found) + 1 if found else 0


def _require(state: State, name: str) -> np.ndarray:
  if name not in state:
    raise ValueError(f"the checkpoint has no tensor {name!r}; is it a CLIP ViT checkpoint?")
  return state[name]


def config_from_shapes(state: State, eot_token_id: int, head_dim: int) -> CLIPConfig:
  """Infers the architecture of a (HF-named) state dict; heads = width // head_dim."""
  conv = _require(state, "vision_model.embeddings.patch_embedding.weight")
  width, _, patch, _ = conv.shape
  num_positions = _require(state, "vision_model.embeddings.position_embedding.weight").shape[0]
  side = math.isqrt(num_positions - 1)
  if side * side != num_positions - 1:
    raise ValueError(f"{num_positions - 1} vision positions do not form a square grid")
  vision = VisionConfig(
      image_size=(side * patch, side * patch), patch_size=patch, width=width,
      layers=_num_layers(state, "vision_model"), heads=width // head_dim,
      mlp_dim=_require(state, "vision_model.encoder.layers.0.mlp.fc1.weight").shape[0],
      embed_dim=_require(state, "visual_projection.weight").shape[0])
  vocab_size, text_width = _require(state, "text_model.embeddings.token_embedding.weight").shape
  text = TextConfig(
      vocab_size=vocab_size,
      context_length=_require(state, "text_model.embeddings.position_embedding.weight").shape[0],
      width=text_width, layers=_num_layers(state, "text_model"), heads=text_width // head_dim,
      mlp_dim=_require(state, "text_model.encoder.layers.0.mlp.fc1.weight").shape[0],
      embed_dim=_require(state, "text_projection.weight").shape[0], eot_token_id=eot_token_id)
  return CLIPConfig(vision=vision, text=text)


def config_from_hf(hf: transformers.CLIPConfig, eot_token_id: int) -> CLIPConfig:
  """The CLIPConfig of a Hugging Face CLIPConfig."""
  v, t = hf.vision_config, hf.text_config
  vision = VisionConfig(
      image_size=(v.image_size, v.image_size), patch_size=v.patch_size, width=v.hidden_size,
      layers=v.num_hidden_layers, heads=v.num_attention_heads, mlp_dim=v.intermediate_size,
      embed_dim=hf.projection_dim, activation=v.hidden_act, layer_norm_eps=v.layer_norm_eps)
  text = TextConfig(
      vocab_size=t.vocab_size, context_length=t.max_position_embeddings, width=t.hidden_size,
      layers=t.num_hidden_layers, heads=t.num_attention_heads, mlp_dim=t.intermediate_size,
      embed_dim=hf.projection_dim, eot_token_id=eot_token_id, activation=t.hidden_act,
      layer_norm_eps=t.layer_norm_eps)
  return CLIPConfig(vision=vision, text=text, logit_scale_init=hf.logit_scale_init_value)


def params_from_hf_names(state: State, config: CLIPConfig) -> dict[str, Any]:
  """Builds the jreid CLIP parameter tree from a HF-named state dict."""
  state = dict(state)

  def take(name):
    value = _require(state, name)
    del state[name]
    return value

  def dense(name):
    params = {"kernel": take(f"{name}.weight").T}
    if f"{name}.bias" in state:
      params["bias"] = take(f"{name}.bias")
    return params

  def norm(name):
    return {"scale": take(f"{name}.weight"), "bias": take(f"{name}.bias")}

  def transformer(tower, layers):
    blocks = {}
    for i in range(layers):
      prefix = f"{tower}.encoder.layers.{i}"
      blocks[f"blocks_{i}"] = {
          "ln_1": norm(f"{prefix}.layer_norm1"),
          "attn": {role: dense(f"{prefix}.self_attn.{proj}_proj")
                   for role, proj in (("query", "q"), ("key", "k"), ("value", "v"),
                                      ("out", "out"))},
          "ln_2": norm(f"{prefix}.layer_norm2"),
          "mlp": {"fc1": dense(f"{prefix}.mlp.fc1"), "fc2": dense(f"{prefix}.mlp.fc2")},
      }
    return blocks

  vision = {
      # torch conv (out, in, kh, kw) -> flax (kh, kw, in, out)
      "patch_embed": {"kernel": take("vision_model.embeddings.patch_embedding.weight")
                                .transpose(2, 3, 1, 0)},
      "class_embedding": take("vision_model.embeddings.class_embedding"),
      "pos_embedding": take("vision_model.embeddings.position_embedding.weight"),
      "ln_pre": norm("vision_model.pre_layrnorm"),
      "transformer": transformer("vision_model", config.vision.layers),
      "ln_post": norm("vision_model.post_layernorm"),
      "proj": dense("visual_projection"),
  }
  text = {
      "token_embedding": {"embedding": take("text_model.embeddings.token_embedding.weight")},
      "pos_embedding": take("text_model.embeddings.position_embedding.weight"),
      "transformer": transformer("text_model", config.text.layers),
      "ln_final": norm("text_model.final_layer_norm"),
      "proj": dense("text_projection"),
  }
  params = {"vision": vision, "text": text, "logit_scale": take("logit_scale").reshape(())}
  unused = sorted(name for name in state if not name.endswith("position_ids"))
  if unused:
    raise ValueError(f"the checkpoint has tensors a CLIP ViT does not use: {unused[:10]}")
  return params


def with_image_size(config: CLIPConfig, params: dict[str, Any],
                    image_size: tuple[int, int]) -> tuple[CLIPConfig, dict[str, Any]]:
  """Retargets the vision tower to image_size, resizing the position grid (bicubic)."""
  vision = dataclasses.replace(config.vision, image_size=image_size)
  if vision.grid != config.vision.grid:
    pos = params["vision"]["pos_embedding"]
    params = {**params, "vision": {**params["vision"], "pos_embedding": resize_pos_embed(
        pos, config.vision.grid, vision.grid)}}
  return dataclasses.replace(config, vision=vision), params


def convert_clip(src: str, dst: str, image_size: tuple[int, int] | None = None,
                 tokenizer_dir: str | None = None, head_dim: int = 64) -> CLIPConfig:
  """Converts a HF or OpenAI CLIP checkpoint into a jreid model directory.

  Args:
    src: a HF CLIPModel directory, or an OpenAI .pt/.pth/.safetensors file.
    dst: output directory (see jreid.models.save_clip).
    image_size: (H, W) the vision tower will take; None keeps the source size.
    tokenizer_dir: tokenizer files; defaults to src for a HF directory.
    head_dim: attention head width, used where the source has no config
      (OpenAI checkpoints: 64).

  Returns:
    The config written.
  """
  if os.path.isdir(src):
    tokenizer = load_tokenizer(tokenizer_dir or src)
    state, hf_config = read_hf_directory(src)
    config = config_from_hf(hf_config, tokenizer.eot_token_id)
  elif os.path.isfile(src):
    if tokenizer_dir is None:
      raise ValueError(f"{src} carries no tokenizer: pass --tokenizer DIR (CLIP's "
                       "tokenizer.json, or vocab.json and merges.txt)")
    tokenizer = load_tokenizer(tokenizer_dir)
    state = read_safetensors(src) if src.endswith(".safetensors") else read_torch_checkpoint(src)
    if "visual.conv1.weight" in state:
      state = openai_to_hf_names(state)
    config = config_from_shapes(state, tokenizer.eot_token_id, head_dim)
  else:
    raise FileNotFoundError(f"no CLIP checkpoint at {src!r}: expected a Hugging Face CLIPModel "
                            "directory or an OpenAI .pt/.pth/.safetensors file")
  params = params_from_hf_names(state, config)
  if image_size is not None:
    config, params = with_image_size(config, params, image_size)
  _check_tokenizer(tokenizer, config)
  save_clip(dst, config, params, tokenizer)
  return config


def _check_tokenizer(tokenizer: Tokenizer, config: CLIPConfig) -> None:
  if tokenizer.vocab_size > config.text.vocab_size:
    raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the text tower "
                     f"embeds only {config.text.vocab_size}")


def _image_size(text: str) -> tuple[int, int]:
  sizes = tuple(int(s) for s in text.split(","))
  if len(sizes) == 1:
    return sizes * 2
  if len(sizes) != 2:
    raise argparse.ArgumentTypeError(f"expected H,W or S, got {text!r}")
  return sizes


def _run_clip(args: argparse.Namespace) -> None:
  config = convert_clip(args.src, args.dst, args.image_size, args.tokenizer, args.head_dim)
  v = config.vision
  print(f"wrote {args.dst}: ViT {v.layers}x{v.width} patch {v.patch_size} at "
        f"{v.image_size[0]}x{v.image_size[1]}, text {config.text.layers}x{config.text.width}")


def add_clip_command(subparsers: argparse._SubParsersAction) -> None:
  parser = subparsers.add_parser(
      "clip", help="OpenAI / Hugging Face CLIP -> jreid model directory",
      description="Convert a CLIP ViT checkpoint (HF CLIPModel directory or OpenAI file).")
  parser.add_argument("--src", required=True,
                      help="HF CLIPModel directory, or OpenAI .pt/.pth/.safetensors file")
  parser.add_argument("--dst", required=True, help="output model directory")
  parser.add_argument("--image-size", type=_image_size, default=None, metavar="H,W",
                      help="input size of the converted vision tower (position grid resized)")
  parser.add_argument("--tokenizer", default=None, metavar="DIR",
                      help="tokenizer directory (default: --src when it is a HF directory)")
  parser.add_argument("--head-dim", type=int, default=64,
                      help="attention head width for sources without a config (OpenAI: 64)")
  parser.set_defaults(run=_run_clip)


def bert_config_from_hf(hf: transformers.BertConfig) -> bert_lib.BertConfig:
  """The BertConfig of a Hugging Face BertConfig (absolute positions only)."""
  if getattr(hf, "position_embedding_type", "absolute") != "absolute":
    raise ValueError(f"position_embedding_type {hf.position_embedding_type!r}: only 'absolute' is supported")
  return bert_lib.BertConfig(
      vocab_size=hf.vocab_size, width=hf.hidden_size, layers=hf.num_hidden_layers, heads=hf.num_attention_heads,
      mlp_dim=hf.intermediate_size, max_positions=hf.max_position_embeddings, type_vocab_size=hf.type_vocab_size,
      layer_norm_eps=hf.layer_norm_eps, activation=hf.hidden_act, pad_token_id=hf.pad_token_id or 0)


def params_from_bert_state(state: State, config: bert_lib.BertConfig) -> dict[str, Any]:
  """The jreid BERT parameter tree of a HF BertModel state dict (the pooler and task heads are dropped)."""
  state = {re.sub(r"^bert\.", "", name): value for name, value in state.items()}
  state = {name: value for name, value in state.items()
           if not name.startswith(("pooler.", "cls.")) and not name.endswith("position_ids")}

  def take(name):
    if name not in state:
      raise ValueError(f"the checkpoint has no tensor {name!r}; is it a BERT checkpoint?")
    return state.pop(name)

  def dense(name):
    return {"kernel": take(f"{name}.weight").T, "bias": take(f"{name}.bias")}

  def norm(name):
    return {"scale": take(f"{name}.weight"), "bias": take(f"{name}.bias")}

  params = {
      "token_embedding": {"embedding": take("embeddings.word_embeddings.weight")},
      "pos_embedding": {"embedding": take("embeddings.position_embeddings.weight")},
      "type_embedding": {"embedding": take("embeddings.token_type_embeddings.weight")},
      "ln_embed": norm("embeddings.LayerNorm"),
  }
  for i in range(config.layers):
    prefix = f"encoder.layer.{i}"
    params[f"layers_{i}"] = {
        "attn": {"query": dense(f"{prefix}.attention.self.query"), "key": dense(f"{prefix}.attention.self.key"),
                 "value": dense(f"{prefix}.attention.self.value"), "out": dense(f"{prefix}.attention.output.dense")},
        "ln_attn": norm(f"{prefix}.attention.output.LayerNorm"),
        "mlp": {"fc1": dense(f"{prefix}.intermediate.dense"), "fc2": dense(f"{prefix}.output.dense")},
        "ln_mlp": norm(f"{prefix}.output.LayerNorm"),
    }
  if state:
    raise ValueError(f"the checkpoint has tensors a {config.layers}-layer BERT does not use: {sorted(state)[:10]}")
  return params


def read_bert_directory(directory: str) -> tuple[State, transformers.BertConfig]:
  """Reads a Hugging Face BERT directory: config.json and model.safetensors or pytorch_model.bin."""
  config_path = os.path.join(directory, "config.json")
  weights = [os.path.join(directory, name) for name in ("model.safetensors", "pytorch_model.bin")]
  weights = [path for path in weights if os.path.isfile(path)]
  if not os.path.isfile(config_path) or not weights:
    raise FileNotFoundError(f"{directory!r} is not a Hugging Face BERT directory: expected config.json and "
                            "model.safetensors or pytorch_model.bin")
  path = weights[0]
  state = read_safetensors(path) if path.endswith(".safetensors") else read_torch_checkpoint(path)
  return state, transformers.BertConfig.from_json_file(config_path)


def convert_bert(src: str, dst: str) -> bert_lib.BertConfig:
  """Converts a Hugging Face BERT directory (weights and tokenizer) into a jreid BERT directory."""
  tokenizer = bert_lib.load_wordpiece_tokenizer(src)
  state, hf_config = read_bert_directory(src)
  config = bert_config_from_hf(hf_config)
  if tokenizer.vocab_size > config.vocab_size:
    raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model embeds only "
                     f"{config.vocab_size}")
  bert_lib.save_bert(dst, config, params_from_bert_state(state, config), tokenizer)
  return config


def _run_bert(args: argparse.Namespace) -> None:
  config = convert_bert(args.src, args.dst)
  print(f"wrote {args.dst}: BERT {config.layers}x{config.width}, {config.heads} heads, "
        f"vocabulary {config.vocab_size}")


def add_bert_command(subparsers: argparse._SubParsersAction) -> None:
  parser = subparsers.add_parser(
      "bert", help="Hugging Face BERT -> jreid BERT directory (instruction encoder)",
      description="Convert a Hugging Face BERT model directory (e.g. a sentence-transformers MiniLM).")
  parser.add_argument("--src", required=True, help="HF BERT directory (config.json, weights, tokenizer files)")
  parser.add_argument("--dst", required=True, help="output model directory")
  parser.set_defaults(run=_run_bert)


def _run_export(args: argparse.Namespace) -> None:
  spec = inference.export(args.workdir, args.dst, args.step, args.dtype)
  print(f"wrote {args.dst}: {spec['method']} at step {spec['source']['step']}, {spec['dtype']}, "
        f"queries: {', '.join(spec['query_kinds'])}")


def add_export_command(subparsers: argparse._SubParsersAction) -> None:
  parser = subparsers.add_parser(
      "export", help="training run -> inference model directory (jreid.load)",
      description="Export a training run's checkpoint: parameters, model config, tokenizer, preprocessing.")
  parser.add_argument("--workdir", required=True, help="training run directory (config.json, checkpoints/)")
  parser.add_argument("--dst", required=True, help="output model directory")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  parser.add_argument("--dtype", choices=tuple(inference.DTYPES), default="fp32",
                      help="parameter and compute dtype of the exported model")
  parser.set_defaults(run=_run_export)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m jreid.convert", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  subparsers = parser.add_subparsers(dest="command", required=True)
  add_clip_command(subparsers)
  add_bert_command(subparsers)
  add_export_command(subparsers)
  return parser


def main(argv: Sequence[str] | None = None) -> None:
  """Runs the command line; argv excludes the program name. Bad input exits with status 1 and one line (jreid.cli)."""
  args = build_parser().parse_args(argv)
  cli.guarded(lambda: args.run(args), (ImportError,))


if __name__ == "__main__":
  main(sys.argv[1:])
