"""Image preprocessing inside the jitted functions: uint8 in, normalised float out."""

import jax
import jax.numpy as jnp

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def normalize_images(images: jax.Array, dtype=jnp.float32) -> jax.Array:
  """uint8 [..., H, W, 3] -> (x / 255 - mean) / std in `dtype` (CLIP statistics)."""
  x = images.astype(jnp.float32) / 255.0
  x = (x - jnp.asarray(CLIP_MEAN)) / jnp.asarray(CLIP_STD)
  return x.astype(dtype)
