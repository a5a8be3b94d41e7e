"""Learning-rate schedules and the optax optimizer with per-group lr / weight decay."""

from __future__ import annotations

import re
from typing import Any

import jax
import optax
from ml_collections import ConfigDict


def make_schedule(cfg: ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warm-up from cfg.warmup_init_lr to cfg.lr, then 'cosine', 'step' or 'constant'."""
  warmup = optax.linear_schedule(cfg.warmup_init_lr, cfg.lr, max(cfg.warmup_steps, 1))
  decay_steps = max(total_steps - cfg.warmup_steps, 1)
  if cfg.schedule == "cosine":
    main = optax.cosine_decay_schedule(cfg.lr, decay_steps, alpha=cfg.min_lr / cfg.lr if cfg.lr else 0.0)
  elif cfg.schedule == "step":
    boundaries = {int(m) - cfg.warmup_steps: cfg.step_gamma for m in cfg.step_milestones}
    main = optax.piecewise_constant_schedule(cfg.lr, boundaries)
  elif cfg.schedule == "constant":
    main = optax.constant_schedule(cfg.lr)
  else:
    raise ValueError(f"optim.schedule must be 'cosine', 'step' or 'constant', got {cfg.schedule!r}")
  return optax.join_schedules([warmup, main], [cfg.warmup_steps])


def param_path(path) -> str:
  """'vision/blocks_0/attn/query/kernel' style name of a parameter's tree path."""
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def group_labels(params: Any, groups) -> Any:
  """Labels each parameter with the name of the first group whose regex matches its path."""
  def label(path, _):
    name = param_path(path)
    for group in groups:
      if re.search(group["pattern"], name):
        return group["pattern"]
    return "default"
  return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(cfg: ConfigDict, params: Any, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """An optimizer over parameter groups; returns it and the base schedule.

  cfg.name: 'adamw' (decoupled weight decay), 'adam' (L2 added to the gradient,
  as torch's Adam) or 'sgd' (momentum cfg.b1, L2 added to the gradient).

  cfg.param_groups is a list of {pattern, lr_mult, weight_decay}: the first
  pattern (regex over the parameter path) that matches a parameter decides its
  group; unmatched parameters use cfg.weight_decay and the base learning rate.
  """
  schedule = make_schedule(cfg, total_steps)
  groups = [dict(g) for g in cfg.param_groups]

  def optimizer(lr_mult: float, weight_decay: float) -> optax.GradientTransformation:
    lr = lambda step: schedule(step) * lr_mult  # noqa: E731
    if cfg.name == "adamw":
      return optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=weight_decay)
    if cfg.name == "adam":
      return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    if cfg.name == "sgd":
      return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(lr, momentum=cfg.b1))
    raise ValueError(f"optim.name must be 'adamw', 'adam' or 'sgd', got {cfg.name!r}")

  transforms = {"default": optimizer(1.0, cfg.weight_decay)}
  for g in groups:
    transforms[g["pattern"]] = optimizer(g.get("lr_mult", 1.0), g.get("weight_decay", cfg.weight_decay))
  tx = optax.multi_transform(transforms, group_labels(params, groups))
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx, schedule
