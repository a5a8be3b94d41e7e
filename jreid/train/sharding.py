"""The device mesh and the shardings of the train state and of batches, from config.

Sharding is data: `config.mesh.shape` sizes the axes ('data', 'fsdp',
'model'); `config.mesh.rules` maps parameter paths (regexes, first match wins)
to per-dimension mesh axes; then FSDP shards the largest still unsharded
dimension that divides evenly over 'fsdp' of every parameter with at least
`config.mesh.fsdp_min_size` elements. Everything else is replicated. Batches are
sharded over ('data', 'fsdp') along their first dimension. Inside the train step
FSDP-sharded parameters are gathered for use, so activations stay batch-sharded.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
from ml_collections import ConfigDict

from jreid.train.optimizer import param_path

AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")


def mesh_shape(shape: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
  """Axis sizes in AXES order; one size may be -1 ('all remaining devices'), absent axes are 1."""
  unknown = set(shape) - set(AXES)
  if unknown:
    raise ValueError(f"mesh.shape has unknown axes {sorted(unknown)}; the axes are {AXES}")
  sizes = [int(shape.get(axis, 1)) for axis in AXES]
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"mesh.shape {dict(shape)}: sizes must be positive, at most one may be -1")
  if -1 in sizes:
    rest, known = num_devices, math.prod(s for s in sizes if s != -1)
    if rest % known:
      raise ValueError(f"mesh.shape {dict(shape)}: {num_devices} devices do not split into groups of {known}")
    sizes[sizes.index(-1)] = rest // known
  if math.prod(sizes) > num_devices:
    raise ValueError(f"mesh.shape {dict(shape)} needs {math.prod(sizes)} devices; there are {num_devices}")
  return tuple(sizes)


def make_mesh(cfg: ConfigDict, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """The mesh of config.mesh over `devices` (default: all devices; a smaller mesh takes the first ones)."""
  devices = jax.devices() if devices is None else list(devices)
  sizes = mesh_shape(cfg.shape, len(devices))
  return jax.make_mesh(sizes, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)


def _names(entry) -> tuple[str, ...]:
  """A PartitionSpec entry (None, a name or a tuple of names) as a tuple of names."""
  return (entry,) if isinstance(entry, str) else tuple(entry or ())


def _entry(names: tuple[str, ...]):
  return names[0] if len(names) == 1 else (names or None)


def param_spec(name: str, shape: Sequence[int], axis_sizes: Mapping[str, int], rules: Sequence,
               fsdp_min_size: int) -> PartitionSpec:
  """The PartitionSpec of one parameter from its path `name` and shape.

  The first rule (pattern, axes) whose pattern `re.search`es `name` gives one
  entry per dimension: None, an axis name or a tuple of names. Axes of size 1
  are dropped; an axis that does not divide its dimension is an error. Then
  FSDP (see the module docstring).
  """
  spec: list[Any] = [None] * len(shape)
  for pattern, axes in rules:
    if re.search(pattern, name):
      if len(axes) != len(shape):
        raise ValueError(f"mesh.rules: {pattern!r} gives {len(axes)} axes for {name} of shape {tuple(shape)}")
      for dim, entry in enumerate(axes):
        names = tuple(a for a in _names(entry) if axis_sizes[a] > 1)
        size = math.prod(axis_sizes[a] for a in names)
        if shape[dim] % size:
          raise ValueError(f"mesh.rules: {name} dimension {dim} of size {shape[dim]} does not split over "
                           f"{names} ({size} devices)")
        spec[dim] = _entry(names)
      break
  fsdp = axis_sizes["fsdp"]
  if fsdp > 1 and math.prod(shape) >= fsdp_min_size:
    free = [d for d in range(len(shape)) if spec[d] is None and shape[d] % fsdp == 0]
    if free:
      spec[max(free, key=lambda d: (shape[d], -d))] = "fsdp"
  return PartitionSpec(*spec)


def tree_shardings(mesh: Mesh, tree: Any, cfg: ConfigDict) -> Any:
  """NamedShardings of a tree of arrays (or ShapeDtypeStructs) by the rules of config.mesh."""
  def leaf(path, x):
    return NamedSharding(mesh, param_spec(param_path(path), x.shape, mesh.shape, cfg.rules, cfg.fsdp_min_size))
  return jax.tree_util.tree_map_with_path(leaf, tree)


def _by_param(opt_state: Any, params: Any, param_shardings: Any, default: NamedSharding) -> Any:
  """Optimizer-state leaves whose path ends with a parameter's path and whose shape is its shape take
  that parameter's sharding (Adam's moments); the others (counts) take `default`."""
  by_path = {}
  for (path, x), sharding in zip(jax.tree_util.tree_leaves_with_path(params),
                                 jax.tree_util.tree_leaves(param_shardings)):
    by_path[param_path(path)] = (tuple(x.shape), sharding)

  def leaf(path, x):
    parts = param_path(path).split("/")
    for start in range(len(parts)):
      shape, sharding = by_path.get("/".join(parts[start:]), (None, None))
      if shape == tuple(x.shape):
        return sharding
    return default
  return jax.tree_util.tree_map_with_path(leaf, opt_state)


def state_shardings(mesh: Mesh, state: Any, cfg: ConfigDict) -> Any:
  """Shardings of a TrainState (of arrays or ShapeDtypeStructs): params and model state by the rules,
  optimizer state like the parameters it tracks, step and RNG replicated."""
  params = tree_shardings(mesh, state.params, cfg)
  return state.replace(
      step=replicated(mesh), rng=replicated(mesh), params=params,
      model_state=tree_shardings(mesh, state.model_state, cfg),
      opt_state=_by_param(state.opt_state, state.params, params, replicated(mesh)))


def gathered(sharding: NamedSharding) -> NamedSharding:
  """The same layout with 'fsdp' removed: how a parameter is used in the forward and backward pass."""
  spec = (_entry(tuple(a for a in _names(e) if a != "fsdp")) for e in sharding.spec)
  return NamedSharding(sharding.mesh, PartitionSpec(*spec))


@dataclasses.dataclass(frozen=True)
class StepShardings:
  """The layouts a train step is compiled for.

  state: the TrainState's (stored) shardings; batch: of every batch field;
  metrics: replicated; compute: the parameters' layout inside the step (FSDP
  all-gathers them there, and their gradients are reduce-scattered back), so
  that activations stay sharded over the batch.
  """

  state: Any
  batch: NamedSharding
  metrics: NamedSharding
  compute: Any


def step_shardings(mesh: Mesh, state_shardings: Any) -> StepShardings:
  """The StepShardings of a state laid out as `state_shardings` on `mesh`."""
  return StepShardings(state_shardings, batch_sharding(mesh), replicated(mesh),
                       jax.tree.map(gathered, state_shardings.params))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension over ('data', 'fsdp'); replicated over 'model'."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def process_block(sharding: NamedSharding, batch_size: int) -> tuple[int, int]:
  """(block index, block count): this process holds rows [index * n, (index + 1) * n) of a global batch
  of `batch_size` rows, n = batch_size // count. Raises if its rows are not one such block."""
  shards = math.prod(sharding.mesh.shape[a] for a in BATCH_AXES)
  if batch_size % shards:
    raise ValueError(f"a global batch of {batch_size} does not split over data x fsdp = {shards} devices")
  rows = sorted({index[0].indices(batch_size)[:2]
                 for index in sharding.addressable_devices_indices_map((batch_size,)).values()})
  start, stop = rows[0][0], rows[-1][1]
  if any(a[1] != b[0] for a, b in zip(rows, rows[1:])) or batch_size % (stop - start) or start % (stop - start):
    raise ValueError(f"this process's devices hold rows {rows} of the batch: not one contiguous block")
  return start // (stop - start), batch_size // (stop - start)


def global_batch(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Global jax.Arrays from this process's block of rows of every batch field."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}
