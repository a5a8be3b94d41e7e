"""Parity with transformers' CLIPModel: conversion from HF and OpenAI checkpoints.

Every test name contains `parity` (select them with `pytest -k parity`).
"""

import re

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="parity tests need PyTorch: install the dev extra")
import transformers  # noqa: E402

from jreid import convert  # noqa: E402
from jreid.models import CLIP, build_local_tokenizer, load_clip, load_tokenizer  # noqa: E402

CAPTIONS = [
    "a man in a red shirt and blue jeans",
    "the woman wears a black coat and carries a white bag",
    "a young person with a green backpack and white shoes",
]
CONTEXT = 16
TEXTS = ["a man with a bag", "the woman in a black coat and white shoes walks past the camera "
         "with a green backpack and blue jeans", "unseen wörds ☃"]

_HF_TO_OPENAI = (
    (r"^vision_model\.embeddings\.class_embedding$", "visual.class_embedding"),
    (r"^vision_model\.embeddings\.position_embedding\.weight$", "visual.positional_embedding"),
    (r"^vision_model\.embeddings\.patch_embedding\.", "visual.conv1."),
    (r"^vision_model\.pre_layrnorm\.", "visual.ln_pre."),
    (r"^vision_model\.post_layernorm\.", "visual.ln_post."),
    (r"^vision_model\.encoder\.layers\.", "visual.transformer.resblocks."),
    (r"^text_model\.encoder\.layers\.", "transformer.resblocks."),
    (r"^text_model\.embeddings\.token_embedding\.", "token_embedding."),
    (r"^text_model\.embeddings\.position_embedding\.weight$", "positional_embedding"),
    (r"^text_model\.final_layer_norm\.", "ln_final."),
    (r"\.layer_norm1\.", ".ln_1."),
    (r"\.layer_norm2\.", ".ln_2."),
    (r"\.self_attn\.out_proj\.", ".attn.out_proj."),
    (r"\.mlp\.fc1\.", ".mlp.c_fc."),
    (r"\.mlp\.fc2\.", ".mlp.c_proj."),
)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  """A random tiny HF CLIPModel (224x224, patch 16) saved with tokenizer files."""
  directory = str(tmp_path_factory.mktemp("hf_clip"))
  tokenizer = build_local_tokenizer(CAPTIONS * 3, directory, vocab_size=560)
  tower = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
  config = transformers.CLIPConfig(
      text_config=dict(tower, vocab_size=tokenizer.vocab_size, max_position_embeddings=CONTEXT,
                       bos_token_id=tokenizer.sot_token_id, eos_token_id=tokenizer.eot_token_id,
                       pad_token_id=tokenizer.pad_token_id),
      vision_config=dict(tower, image_size=224, patch_size=16),
      projection_dim=32)
  torch.manual_seed(0)
  model = transformers.CLIPModel(config).eval()
  with torch.no_grad():  # random values everywhere, so that no mapping hides behind zeros/ones
    for name, param in model.named_parameters():
      offset = 1.0 if re.search(r"norm.*weight", name) else 0.0
      param.copy_(torch.randn_like(param) * 0.1 + offset)
  model.save_pretrained(directory)
  return directory


@pytest.fixture(scope="module")
def hf_model(hf_dir):
  return transformers.CLIPModel.from_pretrained(hf_dir).eval()


@pytest.fixture(scope="module")
def converted_hf(hf_dir, tmp_path_factory):
  dst = str(tmp_path_factory.mktemp("from_hf"))
  convert.main(["clip", "--src", hf_dir, "--dst", dst])
  return load_clip(dst)


def _hf_to_openai(state):
  """The OpenAI CLIP state dict that holds the same weights as a HF CLIPModel one."""
  out = {}
  for name, value in state.items():
    if name == "visual_projection.weight":
      out["visual.proj"] = value.T
    elif name == "text_projection.weight":
      out["text_projection"] = value.T
    elif not re.search(r"\.self_attn\.[kv]_proj\.", name):  # k, v join q's in_proj
      fused = re.fullmatch(r"(.*)\.self_attn\.q_proj\.(weight|bias)", name)
      if fused:
        value = torch.cat([state[f"{fused[1]}.self_attn.{p}_proj.{fused[2]}"] for p in "qkv"])
        name = f"{fused[1]}.attn.in_proj_{fused[2]}"
      for pattern, replacement in _HF_TO_OPENAI:
        name = re.sub(pattern, replacement, name)
      out[name] = value
  return {name: value.contiguous().clone() for name, value in out.items()}


def _images(height, width):
  return np.random.default_rng(0).standard_normal((2, height, width, 3)).astype(np.float32)


def _encode(loaded, method, *inputs):
  model, params, _ = loaded
  return jax.jit(lambda p, *x: model.apply({"params": p}, *x, method=method))(params, *inputs)


def _assert_close(ours, reference):
  np.testing.assert_allclose(np.asarray(ours), reference.detach().numpy(), rtol=0, atol=1e-5)


def _assert_image_and_text_parity(loaded, hf_model):
  images = _images(224, 224)
  with torch.no_grad():
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2)
    want_image = hf_model.get_image_features(pixel_values=pixels)
    ids = loaded[2].encode(TEXTS, CONTEXT)
    want_text = hf_model.get_text_features(input_ids=torch.from_numpy(ids).long())
  _assert_close(_encode(loaded, CLIP.encode_image, images).embedding, want_image.pooler_output)
  _assert_close(_encode(loaded, CLIP.encode_text, ids).embedding, want_text.pooler_output)


def test_hf_directory_parity(converted_hf, hf_model):
  _assert_image_and_text_parity(converted_hf, hf_model)
  np.testing.assert_allclose(converted_hf[1]["logit_scale"], hf_model.logit_scale.item(), rtol=1e-7)


def test_openai_state_dict_parity(hf_dir, hf_model, converted_hf, tmp_path):
  openai_state = _hf_to_openai(hf_model.state_dict())
  torch.save(openai_state, tmp_path / "clip.pt")
  dst = str(tmp_path / "from_openai")
  convert.main(["clip", "--src", str(tmp_path / "clip.pt"), "--dst", dst,
                "--tokenizer", hf_dir, "--head-dim", "32"])
  loaded = load_clip(dst)
  ours, reference = loaded[0].config, converted_hf[0].config
  assert (ours.vision, ours.text) == (reference.vision, reference.text)
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded[1], converted_hf[1])
  _assert_image_and_text_parity(loaded, hf_model)

  safetensors_torch = pytest.importorskip("safetensors.torch")
  safetensors_torch.save_file(openai_state, str(tmp_path / "clip.safetensors"))
  dst = str(tmp_path / "from_openai_safetensors")
  convert.main(["clip", "--src", str(tmp_path / "clip.safetensors"), "--dst", dst,
                "--tokenizer", hf_dir, "--head-dim", "32"])
  jax.tree_util.tree_map(np.testing.assert_array_equal, load_clip(dst)[1], converted_hf[1])


def test_resized_position_grid_parity(hf_dir, hf_model, tmp_path):
  dst = str(tmp_path / "reid")
  convert.main(["clip", "--src", hf_dir, "--dst", dst, "--image-size", "256,128"])
  loaded = load_clip(dst)
  assert loaded[0].config.vision.grid == (16, 8)
  assert loaded[1]["vision"]["pos_embedding"].shape == (1 + 16 * 8, 64)
  images = _images(256, 128)
  with torch.no_grad():
    want = hf_model.get_image_features(pixel_values=torch.from_numpy(images).permute(0, 3, 1, 2),
                                       interpolate_pos_encoding=True)
  _assert_close(_encode(loaded, CLIP.encode_image, images).embedding, want.pooler_output)


def test_tokenizer_parity(hf_dir, converted_hf):
  reference = transformers.CLIPTokenizer.from_pretrained(hf_dir)
  want = reference(TEXTS, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
  np.testing.assert_array_equal(load_tokenizer(hf_dir).encode(TEXTS, CONTEXT), want)
  np.testing.assert_array_equal(converted_hf[2].encode(TEXTS, CONTEXT), want)
  assert converted_hf[0].config.text.eot_token_id == reference.eos_token_id
