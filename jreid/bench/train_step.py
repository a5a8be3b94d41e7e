"""Train-step speed: the image_reid step (CLIP ViT-B/16 at 256x128, bf16) in images/s and MFU.

Times the jitted train step of the `image_reid` method (forward, identity
and batch-hard triplet losses, backward, AdamW update; state donated) on one
device, on a batch of random uint8 images of P identities x 4 that stays on
the device (no input pipeline). Reports the first (compiling) step and the
median of --steps steps after --warmup, each synced. MFU is FLOPs per step /
step time / --peak, with the FLOPs of XLA's cost analysis of the compiled step
and the analytic count (3 x the forward's matmul FLOPs: 68 GFLOP per image
for ViT-B/16 at 256x128). --preset smoke is a quick check on a CPU.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

import jax
import numpy as np

from configs import image_reid
from jreid import methods
from jreid.models.clip import VisionConfig
from jreid.train import loop, sharding
from jreid.train.step import make_train_step

NUM_INSTANCES = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--preset", choices=image_reid.PRESETS, default="gpu",
                      help="model and optimizer of configs/image_reid.py (gpu: ViT-B/16 at 256x128, bf16).")
  parser.add_argument("--batch", type=int, default=128, help=f"images per step, a multiple of {NUM_INSTANCES}.")
  parser.add_argument("--steps", type=int, default=20, help="timed steps.")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first.")
  parser.add_argument("--peak", type=float, default=989e12,
                      help="the device's peak FLOP/s (default: H100 SXM, bf16 dense).")
  parser.add_argument("--num-classes", type=int, default=751, help="identities of the classifier.")


def analytic_flops(vision: VisionConfig) -> float:
  """Train FLOPs per image of the ViT: 3 x the forward's matmul FLOPs (patches, blocks, projection)."""
  patches = vision.grid[0] * vision.grid[1]
  tokens, width = patches + 1, vision.width
  block = 2 * tokens * (4 * width * width + 2 * width * vision.mlp_dim) + 4 * tokens * tokens * width
  forward = (2 * patches * vision.patch_size**2 * 3 * width + vision.layers * block
             + 2 * width * vision.embed_dim)
  return 3.0 * forward


def _xla_flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per program
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def run(args: argparse.Namespace) -> None:
  if args.batch % NUM_INSTANCES:
    raise ValueError(f"--batch must be a multiple of {NUM_INSTANCES}, got {args.batch}")
  config = image_reid.get_config(args.preset)
  config.data.update(num_ids=args.batch // NUM_INSTANCES, num_instances=NUM_INSTANCES)
  config.mesh.shape = dict(data=1)
  device = jax.devices()[0]
  mesh = sharding.make_mesh(config.mesh, [device])
  method = methods.build(config, args.num_classes)
  create, abstract, tx, _ = loop.state_setup(config, method, loop.batch_spec(config, mesh), mesh)
  layouts = sharding.step_shardings(mesh, jax.tree.map(lambda x: x.sharding, abstract))
  rng = np.random.default_rng(0)
  batch = sharding.global_batch({
      "image": rng.integers(0, 256, (args.batch, *config.model.vision.image_size, 3), dtype=np.uint8),
      "label": np.repeat(np.arange(args.batch // NUM_INSTANCES, dtype=np.int32), NUM_INSTANCES),
  }, layouts.batch)
  state = create()

  start = time.perf_counter()
  step = make_train_step(method.loss, tx, layouts).lower(state, batch).compile()
  state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  first = time.perf_counter() - start
  for _ in range(args.warmup):
    state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  times = []
  for _ in range(args.steps):
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  median = statistics.median(times)

  vision = method.vision
  rows = [("XLA cost analysis", _xla_flops(step) / args.batch), ("analytic", analytic_flops(vision))]
  print(f"\nTrain-step benchmark: image_reid, preset {args.preset} (ViT width {vision.width}, {vision.layers} "
        f"layers, patch {vision.patch_size}, {vision.image_size[0]}x{vision.image_size[1]}, compute "
        f"{vision.dtype}), batch {args.batch}, {args.num_classes} classes, loss {float(metrics['loss']):.4f}")
  print(f"{datetime.date.today().isoformat()}, jax {jax.__version__}, {device.platform}: {device.device_kind}, "
        f"peak {args.peak / 1e12:.4g} TFLOP/s\n")
  print(f"first step (compile + run) {first:.1f} s; median of {args.steps} steps {median * 1e3:.2f} ms "
        f"(min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}); {args.batch / median:,.1f} images/s\n")
  print("| FLOP count | GFLOP / image | TFLOP/s | MFU |")
  print("|---|---:|---:|---:|")
  for name, flops in rows:
    achieved = flops * args.batch / median
    print(f"| {name} | {flops / 1e9:.4g} | {achieved / 1e12:.4g} | {achieved / args.peak:.1%} |")
