"""Image preprocessing inside the jitted functions: uint8 in, normalised float out."""

import jax
import jax.numpy as jnp

from jreid.models.clip import CLIP_MEAN, CLIP_STD


def normalize_images(images: jax.Array, dtype=jnp.float32) -> jax.Array:
  """uint8 [..., H, W, 3] -> (x / 255 - mean) / std in `dtype` (CLIP statistics)."""
  x = images.astype(jnp.float32) / 255.0
  x = (x - jnp.asarray(CLIP_MEAN)) / jnp.asarray(CLIP_STD)
  return x.astype(dtype)
