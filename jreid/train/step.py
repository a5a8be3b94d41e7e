"""The jitted train step and the guard against non-finite losses."""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
import optax

from jreid.train.sharding import StepShardings
from jreid.train.state import TrainState

# loss_fn(params, model_state, batch, rng) -> (loss, (terms, new_model_state))
LossFn = Callable


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation,
                    shardings: StepShardings | None = None) -> Callable:
  """One optimizer step: forward, loss terms, backward, update. The state is donated.

  Its metrics: the loss, the method's terms, the gradient norm and the gradient
  norm of each top-level parameter tree (`grad_norm/vision`, ...: per tower).

  With shardings the step is compiled for them: the state keeps its layout,
  the batch is one global array, so losses over the batch (batch-hard triplet,
  identity CE, BatchNorm statistics) see all of it.
  """

  def sharded_loss_fn(params, model_state, batch, rng):
    params = jax.lax.with_sharding_constraint(params, shardings.compute)
    return loss_fn(params, model_state, batch, rng)

  def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    rng = jax.random.fold_in(state.rng, state.step)
    grad_fn = jax.value_and_grad(loss_fn if shardings is None else sharded_loss_fn, has_aux=True)
    (loss, (terms, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, **terms, "grad_norm": optax.tree.norm(grads),
               **{f"grad_norm/{name}": optax.tree.norm(tree) for name, tree in grads.items()}}
    new_state = state.replace(step=state.step + 1, params=params, model_state=model_state, opt_state=opt_state)
    return new_state, metrics

  if shardings is None:
    return jax.jit(train_step, donate_argnums=0)
  return jax.jit(train_step, in_shardings=(shardings.state, shardings.batch),
                 out_shardings=(shardings.state, shardings.metrics), donate_argnums=0)


class NonFiniteLossError(FloatingPointError):
  """A loss term became NaN or Inf; the message names the step and the first such term."""


def check_finite(step: int, metrics: dict[str, float]) -> None:
  """Raises NonFiniteLossError naming the step and the first non-finite term, then the others.

  The method's loss terms come first (by name), then the total `loss`, then the gradient norms: the first one
  named is where the run broke, the others follow from it.
  """
  bad = sorted((name for name, value in metrics.items() if not np.isfinite(value)),
               key=lambda name: (name.startswith("grad_norm"), name == "loss", name))
  if bad:
    first, *others = (f"{name}={metrics[name]}" for name in bad)
    also = f" (then {', '.join(others)})" if others else ""
    raise NonFiniteLossError(f"non-finite loss at step {step}: {first}{also}")
