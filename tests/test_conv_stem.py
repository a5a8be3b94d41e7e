"""The ViT's convolutional stem and mean pooling, against a PyTorch reference and by hand."""

import dataclasses

import jax
import numpy as np
import pytest

from jreid.bench.train_step import stem_flops
from jreid.models.clip import STEM_GROUPS, ConvStem, VisionConfig, VisionTransformer

torch = pytest.importorskip("torch")
nn = torch.nn

CONFIG = VisionConfig(image_size=(32, 16), patch_size=8, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=16,
                      stem="conv", stem_width=8, stem_blocks=1)


def _torch_stem(params, cfg: VisionConfig) -> nn.Module:
  """The stem written in PyTorch from its description, holding the Flax parameters."""
  conv_weight = lambda p: torch.from_numpy(np.asarray(p["kernel"]).transpose(3, 2, 0, 1).copy())  # noqa: E731

  def norm(p, channels):
    layer = nn.GroupNorm(STEM_GROUPS, channels, eps=1e-6)
    layer.weight.data, layer.bias.data = (torch.from_numpy(np.array(p["scale"])), torch.from_numpy(np.array(p["bias"])))
    return layer

  def conv(p, stride):
    weight = conv_weight(p)
    layer = nn.Conv2d(weight.shape[1], weight.shape[0], 3, stride, 1, bias=False)
    layer.weight.data = weight
    return layer

  class Block(nn.Module):
    def __init__(self, name, channels):
      super().__init__()
      self.c1, self.n1 = conv(params[f"{name}_conv_1"], 1), norm(params[f"{name}_norm_1"], channels)
      self.c2, self.n2 = conv(params[f"{name}_conv_2"], 1), norm(params[f"{name}_norm_2"], channels)

    def forward(self, x):
      return torch.relu(x + self.n2(self.c2(torch.relu(self.n1(self.c1(x))))))

  layers = []
  for stage in range(int(np.log2(cfg.patch_size))):
    channels = cfg.stem_width * 2**stage
    layers += [conv(params[f"conv_{stage}"], 2), norm(params[f"norm_{stage}"], channels), nn.ReLU()]
    layers += [Block(f"block_{stage}_{b}", channels) for b in range(cfg.stem_blocks)]
  proj = nn.Conv2d(channels, cfg.width, 1)
  proj.weight.data, proj.bias.data = conv_weight(params["proj"]), torch.from_numpy(np.array(params["proj"]["bias"]))
  return nn.Sequential(*layers, proj)


@pytest.mark.parametrize("blocks", [0, 2])
def test_conv_stem_matches_pytorch(blocks):
  cfg = dataclasses.replace(CONFIG, stem_blocks=blocks)
  images = jax.random.normal(jax.random.key(1), (3, 32, 16, 3))
  stem = ConvStem(cfg)
  params = stem.init(jax.random.key(0), images)["params"]
  # Random norm parameters (the zero-initialised block scales would hide the residual branch).
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
  out = np.asarray(stem.apply({"params": params}, images))
  assert out.shape == (3, 4, 2, 32)
  with torch.no_grad():
    ref = _torch_stem(params, cfg)(torch.from_numpy(np.asarray(images).transpose(0, 3, 1, 2).copy())).numpy()
  np.testing.assert_allclose(out, ref.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_stem_flops_match_xla():
  # Large enough that the taps XLA leaves uncounted (those on the zero padding) are few.
  cfg = dataclasses.replace(CONFIG, image_size=(256, 128))
  images = jax.numpy.zeros((1, 256, 128, 3))
  stem = ConvStem(cfg)
  params = stem.init(jax.random.key(0), images)
  cost = jax.jit(stem.apply).lower(params, images).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  assert stem_flops(cfg) == pytest.approx(cost["flops"], rel=0.1)


def test_vit_with_conv_stem_has_the_patch_grid_and_mean_pooling():
  cfg = dataclasses.replace(CONFIG, pool="mean")
  images = jax.random.normal(jax.random.key(1), (2, 32, 16, 3))
  model = VisionTransformer(cfg)
  params = model.init(jax.random.key(0), images)["params"]
  assert set(params["patch_embed"]) >= {"conv_0", "conv_2", "block_1_0_conv_1", "proj"}
  out = model.apply({"params": params}, images)
  assert out.tokens.shape == (2, 1 + 4 * 2, 32)
  np.testing.assert_allclose(out.feature, out.tokens[:, 1:].mean(axis=1), rtol=1e-6)
  cls = VisionTransformer(dataclasses.replace(cfg, pool="token")).apply({"params": params}, images)
  np.testing.assert_allclose(cls.feature, out.tokens[:, 0], rtol=1e-6)


@pytest.mark.parametrize("change, message", [
    (dict(stem="hybrid"), "stem 'hybrid'"),
    (dict(patch_size=12, image_size=(24, 12)), "power-of-two"),
    (dict(stem_width=12), "multiple of the stem's 8 groups"),
    (dict(pool="max"), "pool 'max'"),
])
def test_bad_stem_configs_are_refused(change, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(CONFIG, **change)
