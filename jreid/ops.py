"""Array operations that losses, methods, clustering and evaluation share."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def l2_normalize(x, axis: int = -1):
  """x / ||x|| along `axis`, computed in float32 or wider; a zero vector stays zero. NumPy in, NumPy out."""
  xp = np if isinstance(x, np.ndarray) else jnp
  x = x.astype(xp.promote_types(x.dtype, xp.float32))
  return x / xp.maximum(xp.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def masked_mean(values: jax.Array, mask: jax.Array, axis: int | None = None) -> jax.Array:
  """The mean of `values` where `mask` holds (over `axis`, default all); 0 where nothing is masked in."""
  return jnp.sum(jnp.where(mask, values, 0.0), axis=axis) / jnp.maximum(jnp.sum(mask, axis=axis), 1)
