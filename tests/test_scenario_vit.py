"""The ITKM image encoder: shapes, per-group patch embeddings, scenario embedding."""

import jax
import jax.numpy as jnp
import numpy as np

from jreid.models.clip import VisionConfig, VisionTransformer
from jreid.models.scenario_vit import ScenarioViT

CONFIG = VisionConfig(image_size=(32, 16), patch_size=8, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=16)


def _setup(scenario_init_std=0.0):
  model = ScenarioViT(CONFIG, num_scenarios=3, scenario_init_std=scenario_init_std)
  images = jax.random.normal(jax.random.key(1), (4, 32, 16, 3))
  group, scenario = jnp.array([0, 1, 0, 1]), jnp.array([0, 1, 2, -1])
  params = model.init(jax.random.key(0), images, group, scenario)["params"]
  return model, params, images, group, scenario


def test_shapes_and_parameters():
  model, params, images, group, scenario = _setup()
  out = model.apply({"params": params}, images, group, scenario)
  assert out.embedding.shape == (4, 16) and out.tokens.shape == (4, 9, 32)
  assert params["patch_embed_1"]["kernel"].shape == params["vision"]["patch_embed"]["kernel"].shape
  assert params["scenario_embedding"].shape == (3, 32)


def test_groups_use_their_own_patch_embedding():
  model, params, images, _, scenario = _setup()
  same = jnp.array([0, 0, 0, 0])
  other = jnp.array([1, 1, 1, 1])
  a = model.apply({"params": params}, images, same, scenario).embedding
  b = model.apply({"params": params}, images, other, scenario).embedding
  assert not np.allclose(a, b)

  def loss(p, group):
    return jnp.sum(model.apply({"params": p}, images, group, scenario).embedding ** 2)

  grads = jax.grad(loss)(params, same)
  assert np.all(grads["patch_embed_1"]["kernel"] == 0)
  assert np.any(grads["vision"]["patch_embed"]["kernel"] != 0)
  grads = jax.grad(loss)(params, other)
  assert np.all(grads["vision"]["patch_embed"]["kernel"] == 0)
  assert np.any(grads["patch_embed_1"]["kernel"] != 0)


def test_zero_scenario_embedding_equals_plain_vit():
  model, params, images, group, scenario = _setup(scenario_init_std=0.0)
  params = dict(params, patch_embed_1=params["vision"]["patch_embed"])
  ours = model.apply({"params": params}, images, group, scenario).embedding
  plain = VisionTransformer(CONFIG).apply({"params": params["vision"]}, images).embedding
  np.testing.assert_array_equal(ours, plain)


def test_scenario_embedding_changes_the_feature_of_its_scenario_only():
  model, params, images, group, _ = _setup(scenario_init_std=0.5)
  params = dict(params, patch_embed_1=params["vision"]["patch_embed"])
  none = model.apply({"params": params}, images, group, jnp.full(4, -1)).embedding
  plain = VisionTransformer(CONFIG).apply({"params": params["vision"]}, images).embedding
  np.testing.assert_array_equal(none, plain)
  with_scenario = model.apply({"params": params}, images, group, jnp.zeros(4, jnp.int32)).embedding
  assert not np.allclose(with_scenario, plain)
