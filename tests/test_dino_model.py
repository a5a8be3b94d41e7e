"""DINO's head (cosine logits to normalised prototypes) and the image tower on local crops."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jreid.models import VisionConfig, VisionTransformer, dino, resize_pos_embed

TOWER = VisionConfig(image_size=(32, 16), patch_size=8, width=16, layers=1, heads=2, mlp_dim=32, embed_dim=8)


def test_dino_head_gives_cosines_to_normalised_prototypes():
  head = dino.DINOHead(num_prototypes=10, hidden_dim=12, bottleneck=6, layers=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  params = head.init(jax.random.PRNGKey(1), x)["params"]
  assert sorted(params) == ["dense_0", "dense_1", "dense_2", "prototypes"]
  logits = head.apply({"params": params}, x)
  assert logits.shape == (4, 10) and logits.dtype == jnp.float32
  # By hand: the MLP, L2 normalisation, then cosines with the prototypes.
  h = x
  for layer in range(2):
    h = jax.nn.gelu(h @ params[f"dense_{layer}"]["kernel"] + params[f"dense_{layer}"]["bias"], approximate=False)
  z = h @ params["dense_2"]["kernel"] + params["dense_2"]["bias"]
  z = z / np.linalg.norm(z, axis=1, keepdims=True)
  w = np.asarray(params["prototypes"])
  np.testing.assert_allclose(np.asarray(logits), z @ (w / np.linalg.norm(w, axis=0)), rtol=1e-5, atol=1e-6)
  # A prototype's length does not matter (weight normalisation).
  scaled = dict(params, prototypes=params["prototypes"].at[:, 3].multiply(7.0))
  np.testing.assert_allclose(np.asarray(head.apply({"params": scaled}, x)), np.asarray(logits), rtol=1e-5,
                             atol=1e-6)


def test_encode_at_size_equals_a_tower_with_the_resized_grid():
  images = jax.random.normal(jax.random.PRNGKey(2), (2, 32, 16, 3))
  params = VisionTransformer(TOWER).init(jax.random.PRNGKey(3), images)["params"]
  same = dino.encode_at_size(TOWER, params, images)
  np.testing.assert_array_equal(same.embedding, VisionTransformer(TOWER).apply({"params": params}, images).embedding)
  local = images[:, :16, :8]
  got = dino.encode_at_size(TOWER, params, local)
  small = dataclasses.replace(TOWER, image_size=(16, 8))
  resized = dict(params, pos_embedding=resize_pos_embed(np.asarray(params["pos_embedding"]), (4, 2), (2, 1)))
  want = VisionTransformer(small).apply({"params": resized}, local)
  assert got.embedding.shape == (2, 8) and got.tokens.shape == (2, 3, 16)
  np.testing.assert_allclose(np.asarray(got.embedding), np.asarray(want.embedding), rtol=1e-4, atol=1e-5)


def test_local_crop_gradients_reach_the_position_grid():
  local = jax.random.normal(jax.random.PRNGKey(4), (2, 16, 8, 3))
  params = VisionTransformer(TOWER).init(jax.random.PRNGKey(5), jnp.zeros((1, 32, 16, 3)))["params"]
  grad = jax.grad(lambda p: jnp.sum(dino.encode_at_size(TOWER, p, local).embedding ** 2))(params)
  assert float(jnp.abs(grad["pos_embedding"][1:]).sum()) > 0
