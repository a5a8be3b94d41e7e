"""Multi-process start-up: `jax.distributed.initialize` from flags or from the launcher's environment.

Sources, first found wins:
  flags     coordinator address, process count and process id given explicitly;
  torchrun  MASTER_ADDR, MASTER_PORT, WORLD_SIZE > 1, RANK, LOCAL_RANK and
            LOCAL_WORLD_SIZE (set by launch.sh and by torchrun); with several
            processes on a host each drives device LOCAL_RANK unless
            JAX_LOCAL_DEVICE_IDS says otherwise;
  slurm     an srun step of more than one task (JAX reads the SLURM_* variables);
  tpu       a Cloud TPU VM (JAX asks the TPU metadata server about the pod).
Otherwise one process drives all local devices and nothing is initialised.
Call before anything touches JAX devices.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
from typing import Mapping

import jax


@dataclasses.dataclass(frozen=True)
class Launch:
  """How this process joins the job; None fields are left to JAX's own detection."""

  source: str
  coordinator_address: str | None = None
  num_processes: int | None = None
  process_id: int | None = None
  local_device_ids: tuple[int, ...] | None = None


def _on_cloud_tpu_vm(environ: Mapping[str, str]) -> bool:
  if environ.get("JAX_PLATFORMS", "tpu").split(",")[0] not in ("", "tpu"):
    return False
  return importlib.util.find_spec("libtpu") is not None and bool(glob.glob("/dev/accel*") or
                                                                   glob.glob("/dev/vfio/[0-9]*"))


def detect(environ: Mapping[str, str] = os.environ, coordinator_address: str | None = None,
           num_processes: int | None = None, process_id: int | None = None) -> Launch | None:
  """The Launch this process is part of, or None for a single process."""
  if coordinator_address or num_processes is not None or process_id is not None:
    return Launch("flags", coordinator_address, num_processes, process_id)
  if "MASTER_ADDR" in environ and int(environ.get("WORLD_SIZE", "1")) > 1:
    address = f"{environ['MASTER_ADDR']}:{environ.get('MASTER_PORT', '29500')}"
    shared_host = int(environ.get("LOCAL_WORLD_SIZE", "1")) > 1 and "JAX_LOCAL_DEVICE_IDS" not in environ
    return Launch("torchrun", address, int(environ["WORLD_SIZE"]), int(environ["RANK"]),
                  (int(environ["LOCAL_RANK"]),) if shared_host else None)
  if int(environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:
    return Launch("slurm")
  if _on_cloud_tpu_vm(environ):
    return Launch("tpu")
  return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> Launch | None:
  """Initialises jax.distributed as `detect` finds; returns the Launch (None: single process)."""
  launch = detect(os.environ, coordinator_address, num_processes, process_id)
  if launch is not None:
    jax.distributed.initialize(launch.coordinator_address, launch.num_processes, launch.process_id,
                               launch.local_device_ids)
  return launch
