"""Editing transformer: the plain ViT at initialisation for any instruction; the gate learns; fusion masks."""

import jax
import jax.numpy as jnp
import numpy as np

from jreid.models import VisionConfig, VisionTransformer
from jreid.models.editing import AttentionFusion, EditingVisionTransformer

CFG = VisionConfig(image_size=(32, 16), patch_size=8, width=32, layers=2, heads=4, mlp_dim=64, embed_dim=16)
EDIT_PARAMS = ("instruction_key", "instruction_value", "gate")


def _inputs(seed, batch=3, tokens=5, width=24):
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(batch, *CFG.image_size, 3)).astype(np.float32)
  instruction = rng.normal(size=(batch, tokens, width)).astype(np.float32) * 3
  mask = rng.random((batch, tokens)) < 0.7
  mask[:, 0] = True
  return images, instruction, mask


def _plain_params(params):
  """The editing tower's parameters less the editing ones: a clip.VisionTransformer tree."""
  def strip(tree):
    return {k: strip(v) if isinstance(v, dict) else v for k, v in tree.items() if k not in EDIT_PARAMS}
  return strip(params)


def test_equals_plain_vit_at_init_for_any_instruction():
  images, instruction, mask = _inputs(0)
  model = EditingVisionTransformer(CFG)
  params = model.init(jax.random.key(1), images, instruction, mask)["params"]
  plain = jax.jit(VisionTransformer(CFG).apply)({"params": _plain_params(params)}, images)
  apply = jax.jit(model.apply)
  for seed in (2, 3):
    _, other_instruction, other_mask = _inputs(seed, width=24)
    edited = apply({"params": params}, images, other_instruction, other_mask)
    for got, want in zip((edited.tokens, edited.feature, edited.embedding),
                         (plain.tokens, plain.feature, plain.embedding)):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
  nothing = apply({"params": params}, images, instruction, np.zeros_like(mask))
  np.testing.assert_allclose(np.asarray(nothing.embedding), np.asarray(plain.embedding), atol=1e-6)


def test_gradient_reaches_gate_and_a_gate_changes_the_output():
  images, instruction, mask = _inputs(0)
  model = EditingVisionTransformer(CFG)
  params = model.init(jax.random.key(1), images, instruction, mask)["params"]

  def loss(p):
    return jnp.sum(model.apply({"params": p}, images, instruction, mask).embedding ** 2)

  grads = jax.jit(jax.grad(loss))(params)["transformer"]
  for block in ("blocks_0", "blocks_1"):
    gate_grad = np.asarray(grads[block]["attn"]["gate"])
    assert gate_grad.shape == (CFG.heads,) and np.all(np.abs(gate_grad) > 0), gate_grad
  opened = jax.tree_util.tree_map(lambda x: x, params)  # a copy of the tree's dicts
  opened["transformer"]["blocks_1"]["attn"]["gate"] = jnp.full((CFG.heads,), 0.5)
  apply = jax.jit(model.apply)
  a = apply({"params": opened}, images, instruction, mask).embedding
  b = apply({"params": opened}, images, _inputs(5)[1], mask).embedding
  assert np.abs(np.asarray(a - b)).max() > 1e-3


def test_fusion_ignores_masked_tokens():
  rng = np.random.default_rng(0)
  feature = rng.normal(size=(2, 32)).astype(np.float32)
  instruction = rng.normal(size=(2, 4, 24)).astype(np.float32)
  mask = np.array([[True, True, False, False], [False, False, False, False]])
  fusion = AttentionFusion(width=32, heads=4, mlp_dim=64, embed_dim=16)
  params = fusion.init(jax.random.key(0), feature, instruction, mask)
  apply = jax.jit(fusion.apply)
  out = apply(params, feature, instruction, mask)
  changed = instruction.copy()
  changed[:, 2:] = 100.0  # masked everywhere
  changed[1] = -7.0  # row 1 has no token at all
  np.testing.assert_allclose(np.asarray(apply(params, feature, changed, mask)), np.asarray(out), atol=1e-6)
  assert out.shape == (2, 16) and np.all(np.isfinite(np.asarray(out)))
