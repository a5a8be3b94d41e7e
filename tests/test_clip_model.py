"""CLIP encoders: shapes, dtypes, causal text, EOT pooling, position-grid resizing."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreid.models import (CLIP, CLIPConfig, TextConfig, VisionConfig, abstract_params, init_params,
                          resize_pos_embed)

EOT = 49
CONFIG = CLIPConfig(
    vision=VisionConfig(image_size=(32, 16), patch_size=8, width=32, layers=2, heads=2,
                        mlp_dim=64, embed_dim=16),
    text=TextConfig(vocab_size=50, context_length=8, width=32, layers=2, heads=2, mlp_dim=64,
                    embed_dim=16, eot_token_id=EOT))


@pytest.fixture(scope="module")
def params():
  return init_params(CONFIG, jax.random.key(0))


def _images(batch=2, config=CONFIG):
  h, w = config.vision.image_size
  return jax.random.normal(jax.random.key(1), (batch, h, w, 3))


def _token_ids():
  return jnp.array([[48, 5, 6, EOT, EOT, EOT, EOT, EOT],
                    [48, 7, 8, 9, 10, 11, EOT, EOT]], jnp.int32)


def _apply(params, method, *args, config=CONFIG):
  return jax.jit(lambda p, *a: CLIP(config).apply({"params": p}, *a, method=method))(params, *args)


def test_output_shapes(params):
  image, text, logit_scale = _apply(params, CLIP.__call__, _images(), _token_ids())
  assert image.tokens.shape == (2, 1 + 4 * 2, 32)
  assert image.feature.shape == (2, 32) and image.embedding.shape == (2, 16)
  assert text.tokens.shape == (2, 8, 32)
  assert text.feature.shape == (2, 32) and text.embedding.shape == (2, 16)
  assert params["vision"]["pos_embedding"].shape == (1 + 4 * 2, 32)
  np.testing.assert_allclose(logit_scale, math.log(1 / 0.07), rtol=1e-6)
  np.testing.assert_array_equal(image.feature, image.tokens[:, 0])


def test_bf16_compute_with_fp32_params(params):
  config = CONFIG.with_dtype("bfloat16")
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(abstract_params(config)))
  image = _apply(params, CLIP.encode_image, _images(), config=config)
  text = _apply(params, CLIP.encode_text, _token_ids(), config=config)
  assert image.embedding.dtype == text.embedding.dtype == jnp.bfloat16
  image32 = _apply(params, CLIP.encode_image, _images())
  text32 = _apply(params, CLIP.encode_text, _token_ids())
  for low, full in ((image.embedding, image32.embedding), (text.embedding, text32.embedding)):
    np.testing.assert_allclose(np.asarray(low, np.float32), full, atol=0.1, rtol=0.1)


def test_text_attention_is_causal(params):
  ids = _token_ids()
  changed = ids.at[:, 5].set(3)
  before = _apply(params, CLIP.encode_text, ids).tokens
  after = _apply(params, CLIP.encode_text, changed).tokens
  np.testing.assert_array_equal(before[:, :5], after[:, :5])
  assert not np.allclose(before[:, 5:], after[:, 5:])


def test_text_pools_first_eot(params):
  out = _apply(params, CLIP.encode_text, _token_ids())
  np.testing.assert_array_equal(out.feature[0], out.tokens[0, 3])
  np.testing.assert_array_equal(out.feature[1], out.tokens[1, 6])
  np.testing.assert_allclose(out.embedding, out.feature @ params["text"]["proj"]["kernel"],
                             rtol=1e-5, atol=1e-6)


def test_text_input_embeddings_replace_token_lookup(params):
  ids = _token_ids()
  embeddings = params["text"]["token_embedding"]["embedding"][ids]
  direct = _apply(params, CLIP.encode_text, ids)
  given = _apply(params, CLIP.encode_text, ids, embeddings)
  np.testing.assert_allclose(given.embedding, direct.embedding, rtol=1e-6, atol=1e-6)


def test_image_extra_embedding_is_added(params):
  plain = _apply(params, CLIP.encode_image, _images())
  zero = _apply(params, CLIP.encode_image, _images(), jnp.zeros((2, 1, 32)))
  # not a constant across channels, which ln_pre would remove (and leave a rounding difference only)
  extra = jax.random.normal(jax.random.key(2), (2, 1, 32))
  shifted = _apply(params, CLIP.encode_image, _images(), extra)
  np.testing.assert_allclose(zero.embedding, plain.embedding, rtol=1e-6, atol=1e-6)
  assert np.abs(shifted.embedding - plain.embedding).max() > 1e-2


def test_wrong_image_size_is_rejected(params):
  with pytest.raises(ValueError, match=r"expected images \[B, 32, 16, 3\]"):
    CLIP(CONFIG).apply({"params": params}, jnp.zeros((1, 16, 32, 3)), method=CLIP.encode_image)


def test_config_json_round_trip():
  assert CLIPConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG
  assert CONFIG.vision.grid == (4, 2)
  with pytest.raises(ValueError, match="multiples of patch_size"):
    VisionConfig(image_size=(30, 16), patch_size=8)


def test_resize_pos_embed_identity():
  pos = np.random.default_rng(0).standard_normal((1 + 4 * 2, 5)).astype(np.float32)
  np.testing.assert_array_equal(resize_pos_embed(pos, (4, 2), (4, 2)), pos)


@pytest.mark.parametrize("src,dst", [((14, 14), (16, 8)), ((14, 14), (24, 8)), ((4, 6), (3, 2))])
def test_resize_pos_embed_matches_torch(src, dst):
  torch = pytest.importorskip("torch", reason="the torch reference needs the dev extra")
  pos = np.random.default_rng(0).standard_normal((1 + src[0] * src[1], 5))
  grid = torch.from_numpy(pos[1:]).reshape(1, *src, 5).permute(0, 3, 1, 2)
  want = torch.nn.functional.interpolate(grid, size=dst, mode="bicubic", align_corners=False)
  want = want.permute(0, 2, 3, 1).reshape(-1, 5).numpy()
  got = resize_pos_embed(pos, src, dst)
  np.testing.assert_array_equal(got[0], pos[0])
  np.testing.assert_allclose(got[1:], want, rtol=0, atol=1e-12)
  got32 = resize_pos_embed(pos.astype(np.float32), src, dst)
  want32 = torch.nn.functional.interpolate(grid.float(), size=dst, mode="bicubic",
                                           align_corners=False)
  np.testing.assert_allclose(got32[1:], want32.permute(0, 2, 3, 1).reshape(-1, 5).numpy(),
                             rtol=0, atol=1e-5)
