"""Train-step speed: a method's full step (CLIP ViT-B/16 at 256x128, bf16) in images/s and MFU.

Times the jitted train step (forward, the method's losses, backward, AdamW
update; state donated) on one device, on one batch that stays on the device
(no input pipeline):
- `--method image_reid`: random uint8 images of P identities x 4; identity
  and batch-hard triplet losses (the like-for-like peer of anchor_vit.py);
- `--method unified`: the unified model of configs/unified.py on a batch of
  the tiny synthetic set with all nine tasks in it ("mixed"), so that every
  part runs: the editing image tower with instructions, the text tower,
  clothes templates through the image tower, the text+sketch fusion.
Reports the first (compiling) step, the median of --steps steps after
--warmup, each synced, and the images/s of --steps steps dispatched back to
back with one sync at the end (how training runs them, and how
shared/bench/anchor_vit.py times its peers). MFU is FLOPs per step / that
step time / --peak, with the FLOPs of XLA's cost analysis of the compiled
step and the analytic count of the image tower (3 x the forward's matmul
FLOPs: 68 GFLOP per image for ViT-B/16 at 256x128). --profile DIR traces a
few steps and prints where the device time goes, by kind of kernel and the
top kernels. --preset smoke is a quick check on a CPU. JREID_ATTENTION=xla|cudnn
picks the attention kernel.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import pathlib
import statistics
import time

import jax
import numpy as np

from configs import image_reid, unified
from data_pipelines import mixing, synthetic
from data_pipelines.datasets import training_records
from jreid import methods
from jreid.models import clip
from jreid.models.clip import VisionConfig
from jreid.train import distributed, loop, sharding
from jreid.train.step import make_train_step

NUM_INSTANCES = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--method", choices=("image_reid", "unified"), default="image_reid",
                      help="the step to time (see above).")
  parser.add_argument("--preset", choices=image_reid.PRESETS, default="gpu",
                      help="model and optimizer of configs/image_reid.py (gpu: ViT-B/16 at 256x128, bf16).")
  parser.add_argument("--batch", type=int, default=128,
                      help=f"images per step and device, a multiple of {NUM_INSTANCES}.")
  parser.add_argument("--devices", type=int, default=1,
                      help="data-parallel over this many devices (global batch = --batch x --devices).")
  parser.add_argument("--fsdp", type=int, default=1,
                      help="of those devices, shard parameters and optimizer state over groups of this many "
                           "(mesh data = devices / fsdp, fsdp; see jreid/train/sharding.py).")
  parser.add_argument("--steps", type=int, default=20, help="timed steps.")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first.")
  parser.add_argument("--peak", type=float, default=989e12,
                      help="the device's peak FLOP/s (default: H100 SXM, bf16 dense).")
  parser.add_argument("--num-classes", type=int, default=751, help="identities of the classifier.")
  parser.add_argument("--vision", nargs="*", default=(), metavar="KEY=VALUE",
                      help="overrides of the preset's image tower, e.g. stem=patch pool=token (config.model.vision).")
  parser.add_argument("--profile", default="", help="also trace 5 steps into this folder and print a breakdown.")


def stem_flops(vision: VisionConfig) -> float:
  """Forward matmul FLOPs per image of the patch embedding (`clip.patch_embedding`)."""
  patches = vision.grid[0] * vision.grid[1]
  if vision.stem == "patch":
    return 2 * patches * vision.patch_size**2 * 3 * vision.width
  flops, channels_in = 0.0, 3
  for stage in range(vision.stem_stages):
    positions = patches * (vision.patch_size // 2**(stage + 1))**2
    channels = vision.stem_width * 2**stage
    flops += 2 * positions * 9 * channels * (channels_in + 2 * vision.stem_blocks * channels)
    channels_in = channels
  return flops + 2 * patches * channels_in * vision.width


def analytic_flops(vision: VisionConfig) -> float:
  """Train FLOPs per image of the ViT: 3 x the forward's matmul FLOPs (patch embedding, blocks, projection)."""
  tokens, width = vision.grid[0] * vision.grid[1] + 1, vision.width
  block = 2 * tokens * (4 * width * width + 2 * width * vision.mlp_dim) + 4 * tokens * tokens * width
  return 3.0 * (stem_flops(vision) + vision.layers * block + 2 * width * vision.embed_dim)


def _xla_flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per program
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def _override_vision(config, overrides) -> None:
  """Sets config.model.vision keys from KEY=VALUE strings (values parsed as the key's current type)."""
  for item in overrides:
    key, _, value = item.partition("=")
    if key not in config.model.vision:
      raise SystemExit(f"--vision {item}: {key!r} is not a key of config.model.vision ({sorted(config.model.vision)})")
    config.model.vision[key] = type(config.model.vision[key])(value)


def _image_reid_setup(args: argparse.Namespace):
  """(config, method, batch of a spec): random images of P identities x 4, this process's block of rows."""
  config = image_reid.get_config(args.preset)
  _override_vision(config, args.vision)
  size = args.batch * args.devices
  config.data.update(num_ids=size // NUM_INSTANCES, num_instances=NUM_INSTANCES)
  rng = np.random.default_rng(0)
  batch = {
      "image": rng.integers(0, 256, (size, *config.model.vision.image_size, 3), dtype=np.uint8),
      "label": np.repeat(np.arange(size // NUM_INSTANCES, dtype=np.int32), NUM_INSTANCES),
  }

  def block(spec) -> dict:
    rows = size // spec.process_count
    return {k: v[spec.process_index * rows:(spec.process_index + 1) * rows] for k, v in batch.items()}
  return config, methods.build(config, args.num_classes), block


def _unified_setup(args: argparse.Namespace):
  """(config, method, batch of a spec): the tiny synthetic set's first mixed batch of all nine tasks."""
  config = unified.get_config(args.preset)
  _override_vision(config, args.vision)
  config.data.update(num_ids=args.batch * args.devices // NUM_INSTANCES, num_instances=NUM_INSTANCES,
                     num_workers=0)
  data = synthetic.load(size="tiny", seed=0, num_workers=1)
  records = training_records(data, config.data.train_modalities)
  method = methods.build(config, data.num_train_ids, records)

  def block(spec) -> dict:
    return next(iter(mixing.mixed_dataset(method.train_tasks(records, spec), "mixed", config.seed)))
  return config, method, block


def run(args: argparse.Namespace) -> None:
  distributed.initialize()  # one process per GPU under `launch.sh --nproc N --module jreid.bench`
  if args.batch % NUM_INSTANCES:
    raise ValueError(f"--batch must be a multiple of {NUM_INSTANCES}, got {args.batch}")
  config, method, batch_of = (_unified_setup if args.method == "unified" else _image_reid_setup)(args)
  if len(jax.devices()) < args.devices:
    raise ValueError(f"--devices {args.devices}: only {len(jax.devices())} devices here")
  if args.devices % args.fsdp:
    raise ValueError(f"--fsdp {args.fsdp} does not divide --devices {args.devices}")
  config.mesh.shape = dict(data=args.devices // args.fsdp, fsdp=args.fsdp)
  mesh = sharding.make_mesh(config.mesh, jax.devices()[:args.devices])
  setup = loop.state_setup(config, method, mesh)  # setup.spec: this process's block of the global batch
  layouts, phase = setup.layouts, setup.phases[0]
  batch = sharding.global_batch(batch_of(setup.spec), layouts.batch)
  state = setup.create()

  start = time.perf_counter()
  step = make_train_step(phase.loss, phase.tx, layouts).lower(state, batch).compile()
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
  start = time.perf_counter()
  for _ in range(args.steps):
    state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  pipelined = (time.perf_counter() - start) / args.steps
  if jax.process_index() == 0:
    _print_timing(args, method, step, mesh, metrics, first, times, pipelined)
  if args.profile:
    _print_profile(step, state, batch, pathlib.Path(args.profile), pipelined)


def _print_timing(args: argparse.Namespace, method, step, mesh, metrics: dict, first: float, times: list,
                  pipelined: float) -> None:
  median, device = statistics.median(times), jax.devices()[0]
  vision = method.vision
  images = args.batch * args.devices
  rows = [("XLA cost analysis", _xla_flops(step) / args.batch),  # the per-device program
          ("analytic", analytic_flops(vision))]
  attention = os.environ.get(clip.ATTENTION_ENV, "auto")
  print(f"\nTrain-step benchmark: {args.method}, preset {args.preset} (ViT width {vision.width}, {vision.layers} "
        f"layers, patch {vision.patch_size}, {vision.image_size[0]}x{vision.image_size[1]}, compute "
        f"{vision.dtype}, attention {attention}), batch {args.batch} x {args.devices} device(s) "
        f"(mesh {dict(mesh.shape)}, {jax.process_count()} process(es)), loss "
        f"{float(np.asarray(metrics['loss'].addressable_data(0))):.4f}")
  print(f"{datetime.date.today().isoformat()}, jax {jax.__version__}, {device.platform}: {device.device_kind}, "
        f"peak {args.peak / 1e12:.4g} TFLOP/s, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}\n")
  print(f"first step (compile + run) {first:.1f} s; median of {args.steps} synced steps {median * 1e3:.2f} ms "
        f"(min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}); {args.steps} steps back to back "
        f"{pipelined * 1e3:.2f} ms each: {images / pipelined:,.1f} images/s "
        f"({images / pipelined / args.devices:,.1f} per device)\n")
  print("| FLOP count | GFLOP / image | TFLOP/s per device | MFU |")
  print("|---|---:|---:|---:|")
  for name, flops in rows:
    achieved = flops * args.batch / pipelined  # per device
    print(f"| {name} | {flops / 1e9:.4g} | {achieved / 1e12:.4g} | {achieved / args.peak:.1%} |")


PROFILED_STEPS = 5


def _print_profile(step, state, batch, folder: pathlib.Path, step_time: float) -> None:
  """Traces PROFILED_STEPS steps and prints the first device's time per step by kind of kernel and its top
  kernels (collectives run beside the compute, so the busy share may pass 100%)."""
  with jax.profiler.trace(str(folder)):
    for _ in range(PROFILED_STEPS):
      state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
  if jax.process_index():  # every process runs the traced steps (they hold collectives); the first prints
    return
  trace = sorted(folder.rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)[-1]
  kernels, launches = collections.Counter(), 0
  devices = sorted((p for p in jax.profiler.ProfileData.from_file(str(trace)).planes if p.name.startswith("/device:")),
                   key=lambda p: p.name)
  for plane in devices[:1]:  # the first device's: data-parallel devices run the same program
    for line in plane.lines:  # kernels are on the stream lines; the XLA Ops / Modules lines repeat them
      if line.name.startswith("Stream") or line.name.startswith("Kernel"):
        for event in line.events:
          kernels[event.name] += event.duration_ns
          launches += 1
  if not kernels:
    print("\nprofile: no device kernels in the trace (a CPU run has none)")
    return
  total = sum(kernels.values()) / PROFILED_STEPS / 1e6
  kinds = collections.Counter()
  for name, ns in kernels.items():
    kinds[_kernel_kind(name)] += ns
  print(f"\nDevice time per step {total:.2f} ms of {step_time * 1e3:.2f} ms wall "
        f"({total / (step_time * 1e3):.0%} busy), {launches // PROFILED_STEPS} kernels\n")
  print("| kind of kernel | ms / step | share |\n|---|---:|---:|")
  for kind, ns in kinds.most_common():
    print(f"| {kind} | {ns / PROFILED_STEPS / 1e6:.2f} | {ns / sum(kinds.values()):.1%} |")
  hlo = _fusion_lines(step.as_text())
  print("\n| top kernels | ms / step | share | XLA instruction |\n|---|---:|---:|---|")
  for name, ns in kernels.most_common(30):
    print(f"| `{name[:60]}` | {ns / PROFILED_STEPS / 1e6:.3f} | {ns / sum(kernels.values()):.1%} | "
          f"`{hlo.get(name, '')[:150]}` |")


def _fusion_lines(hlo_text: str) -> dict[str, str]:
  """Kernel name (XLA's instruction name with '.' and '-' as '_') -> its instruction, metadata removed."""
  lines = {}
  for line in hlo_text.splitlines():
    line = line.strip().removeprefix("ROOT ")
    if line.startswith("%") and " = " in line:
      name, rest = line[1:].split(" = ", 1)
      lines[name.replace(".", "_").replace("-", "_")] = rest.split(", metadata=")[0]
  return lines


def _kernel_kind(name: str) -> str:
  lowered = name.lower()
  for kind, marks in (("collective (NCCL)", ("nccl", "allreduce", "all_reduce", "allgather", "all_gather",
                                             "reducescatter", "reduce_scatter")),
                      ("attention (cuDNN)", ("sdpa", "flash", "fmha", "dot_do_o", "convert_dq")),
                      ("convolution", ("convolution", "fprop", "dgrad", "wgrad")),
                      ("matmul", ("gemm", "cutlass", "nvjet", "cublas", "matmul", "dot")),
                      ("reduction", ("reduce",)),
                      ("copy / transpose", ("copy", "transpose", "memcpy", "memset", "pad", "slice")),
                      ("fused elementwise", ("fusion", "loop_", "input_", "triton"))):
    if any(mark in lowered for mark in marks):
      return kind
  return "other"
