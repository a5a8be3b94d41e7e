"""DINO's pieces on the image tower: the projection head to K prototypes, and the tower on local crops.

The head is an MLP to a bottleneck, L2-normalised, then a linear map to K
prototypes whose weight columns are L2-normalised too (DINO's weight
normalisation with the norm frozen at 1): each logit is a cosine.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jreid.models.clip import EncoderOutput, VisionConfig, VisionTransformer
from jreid.models.pos_embed import bicubic_matrix
from jreid.ops import l2_normalize


class DINOHead(nn.Module):
  """[B, D] features -> [B, num_prototypes] float32 logits: `layers` Dense (GELU between) to `bottleneck`,
  L2 normalisation, cosine with each L2-normalised prototype."""

  num_prototypes: int = 4096
  hidden_dim: int = 2048
  bottleneck: int = 256
  layers: int = 3
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    dense = lambda features, name: nn.Dense(features, dtype=jnp.dtype(self.dtype), name=name,
                                            kernel_init=nn.initializers.truncated_normal(0.02))
    for layer in range(self.layers - 1):
      x = nn.gelu(dense(self.hidden_dim, f"dense_{layer}")(x), approximate=False)
    x = l2_normalize(dense(self.bottleneck, f"dense_{self.layers - 1}")(x))
    prototypes = self.param("prototypes", nn.initializers.truncated_normal(0.02),
                            (self.bottleneck, self.num_prototypes), jnp.float32)
    return x @ l2_normalize(prototypes, axis=0)


def encode_at_size(cfg: VisionConfig, params, images: jax.Array) -> EncoderOutput:
  """The image tower (`cfg`, `params`) on images of another size, a multiple of the patch size.

  Its position grid is resized bicubically inside the graph (as
  pos_embed.resize_pos_embed resizes a loaded one), so the gradients of local
  crops reach the grid the tower is trained at.
  """
  size = tuple(images.shape[1:3])
  if size == cfg.image_size:
    return VisionTransformer(cfg).apply({"params": params}, images)
  local = dataclasses.replace(cfg, image_size=size)
  rows = jnp.asarray(bicubic_matrix(cfg.grid[0], local.grid[0]), jnp.float32)
  cols = jnp.asarray(bicubic_matrix(cfg.grid[1], local.grid[1]), jnp.float32)
  pos = params["pos_embedding"]
  grid = pos[1:].reshape(*cfg.grid, pos.shape[-1]).astype(jnp.float32)
  resized = jnp.einsum("yh,xw,hwc->yxc", rows, cols, grid).reshape(-1, pos.shape[-1]).astype(pos.dtype)
  return VisionTransformer(local).apply({"params": {**params, "pos_embedding": jnp.concatenate([pos[:1], resized])}},
                                        images)
