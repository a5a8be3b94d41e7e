"""The train state: everything a run needs to continue bit-for-bit."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


class TrainState(struct.PyTreeNode):
  """step, parameters, non-trainable model state (BatchNorm statistics, memories),
  optimizer state and the run's base RNG key (raw uint32, folded with the step)."""

  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  rng: jax.Array

  @classmethod
  def create(cls, params, model_state, tx, rng: jax.Array) -> "TrainState":
    return cls(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
               opt_state=tx.init(params), rng=rng)
