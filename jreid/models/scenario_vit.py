"""The ITKM image encoder: a CLIP ViT with one patch embedding per image group and a scenario embedding.

Every image belongs to a scenario (an index, or -1 for none) and to one of
`num_groups` homogeneous groups (e.g. visible / infrared). The group picks the
patch embedding ("dual-branch front end"); the scenario's learned embedding is
added to every token together with the position embedding (ITKM eq. 1).
Parameters: `vision` (a plain VisionTransformer, whose `patch_embed` is group
0's branch), `patch_embed_<g>` (the same front end, `clip.patch_embedding`)
for the other groups and `scenario_embedding` [num_scenarios, width]. With a zero scenario embedding and equal branches the
encoder is the plain ViT.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jreid.models.clip import EncoderOutput, VisionConfig, VisionTransformer, patch_embedding


class ScenarioViT(nn.Module):
  """ViT over normalised images [B, H, W, 3] with per-image group [B] and scenario [B] ids."""

  config: VisionConfig
  num_scenarios: int
  num_groups: int = 2
  scenario_embedding: bool = True
  scenario_init_std: float = 0.0

  @nn.compact
  def __call__(self, images: jax.Array, group: jax.Array, scenario: jax.Array) -> EncoderOutput:
    cfg = self.config
    vision = VisionTransformer(cfg, name="vision")
    if tuple(images.shape[1:]) != (*cfg.image_size, 3):
      raise ValueError(f"expected images [B, {cfg.image_size[0]}, {cfg.image_size[1]}, 3], got {images.shape}")
    patches = vision.patch_embed(images)
    for g in range(1, self.num_groups):
      branch = patch_embedding(cfg, name=f"patch_embed_{g}")(images)
      patches = jnp.where((group == g)[:, None, None, None], branch, patches)
    extra = None
    if self.scenario_embedding:
      table = self.param("scenario_embedding", nn.initializers.normal(self.scenario_init_std),
                         (self.num_scenarios, cfg.width), jnp.dtype(cfg.param_dtype))
      known = (scenario >= 0)[:, None]
      extra = (jnp.take(table, jnp.clip(scenario, 0), axis=0) * known)[:, None, :]
    return vision.encode_patches(patches, extra)
