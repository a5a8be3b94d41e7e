"""Indexing throughput: image files to feature shards, and its parts.

Exports a randomly initialised model of a `configs/image_reid.py` preset (or
takes an exported --model), writes --num-images JPEGs of the model's input
size into a scratch folder, and times (the median of --repeats runs, after a
compiling warm-up):

  model   the jitted image encoder (the method's `encode_images`) on uint8 batches already on the device
  decode  JPEG files -> uint8 batches (host threads, as the index reads them)
  index   `python -m jreid.search index` end to end (decode, encode, shard writes)

Prints one Markdown table row per dtype, with the machine, date and versions.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import tempfile
import time
from typing import Callable

import jax
import numpy as np
from PIL import Image

from configs import image_reid
from data_pipelines.pipeline import eval_batches
from data_pipelines.records import Record
from jreid import inference, methods, search
from jreid.bench import host_cpu


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--preset", default="cpu", choices=image_reid.PRESETS, help="model of configs/image_reid.py")
  parser.add_argument("--model", default=None, help="an exported model directory instead of --preset")
  parser.add_argument("--num-images", type=int, default=1024, help="images to index")
  parser.add_argument("--batch-size", type=int, default=128, help="images per compiled batch")
  parser.add_argument("--dtypes", nargs="+", default=["fp32"], choices=tuple(inference.DTYPES),
                      help="export dtypes to time (random-init models only)")
  parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
  parser.add_argument("--workers", type=int, default=None,
                      help="chunks encoded at once (default: see jreid.inference.load)")


def _write_images(folder: str, count: int, size: tuple[int, int], seed: int = 0) -> None:
  """JPEGs of smooth random content (blocky noise upsampled), about as compressible as photos."""
  rng = np.random.default_rng(seed)
  for i in range(count):
    small = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((size[1], size[0]), Image.BILINEAR)
    image.save(os.path.join(folder, f"{i:06d}.jpg"), quality=90)


def _random_model(preset: str, dtype: str, dst: str) -> str:
  config = image_reid.get_config(preset)
  method = methods.build(config, 1)
  images = np.zeros((2, *config.model.vision.image_size, 3), np.uint8)
  params, model_state = jax.jit(method.init)(jax.random.PRNGKey(0), {"image": images})
  inference.save_model(dst, config, 1, params, model_state, dtype, source={"benchmark": f"random init, {preset}"})
  return dst


def _rate(count: int, fn: Callable[[], object], repeats: int) -> float:
  """Items per second of the median run."""
  seconds = []
  for _ in range(repeats):
    started = time.perf_counter()
    fn()
    seconds.append(time.perf_counter() - started)
  return count / statistics.median(seconds)


def _model_rate(encoder: inference.Encoder, batch_size: int, repeats: int) -> float:
  """Images per second of the jitted image encoder alone, on device-resident batches of the first device."""
  variables = inference.load_variables(encoder.directory)
  variables = jax.device_put(variables, encoder.devices[0])
  images = jax.device_put(np.random.default_rng(0).integers(0, 256, (batch_size, *encoder.image_size, 3),
                                                            dtype=np.uint8), encoder.devices[0])
  encode = jax.jit(encoder.method.encode_images)
  batches = 8
  encode(*variables, images).block_until_ready()

  def run():
    for _ in range(batches):
      features = encode(*variables, images)
    features.block_until_ready()

  return _rate(batches * batch_size, run, repeats)


def _measure(model: str, args: argparse.Namespace, scratch: str) -> dict:
  encoder = inference.load(model, args.batch_size, workers=args.workers)
  folder = os.path.join(scratch, f"images-{encoder.image_size[0]}x{encoder.image_size[1]}")
  if not os.path.isdir(folder):
    os.makedirs(folder)
    _write_images(folder, args.num_images, encoder.image_size)
  paths = sorted(os.path.join(folder, name) for name in os.listdir(folder))
  encoder.encode_images(paths[:encoder.batch_size])  # compiles
  records = [Record(p, -1, -1) for p in paths]

  def index():
    out = tempfile.mkdtemp(dir=scratch)
    search.build_index(encoder, folder, os.path.join(out, "index"), show_progress=False)
    shutil.rmtree(out)

  return {
      "spec": encoder.spec, "workers": encoder.workers,
      "model": _model_rate(encoder, args.batch_size, args.repeats),
      "decode": _rate(len(records), lambda: sum(1 for _ in eval_batches(records, encoder.image_size, args.batch_size)),
                      args.repeats),
      "index": _rate(len(paths), index, args.repeats),
  }


def _rate_text(rate: float) -> str:
  return f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"


def run(args: argparse.Namespace) -> None:
  devices = jax.local_devices()
  print(f"Indexing benchmark: {args.num_images} images, {datetime.date.today().isoformat()}, jax {jax.__version__}, "
        f"{len(devices)} x {devices[0].device_kind} ({jax.default_backend()}), host {os.cpu_count()} x {host_cpu()}\n")
  print("| model | input | dtype | devices | batch | workers | model (img/s) | decode (img/s) | index (img/s) |")
  print("|---|---|---|---|---:|---:|---:|---:|---:|")
  with tempfile.TemporaryDirectory() as scratch:
    models = ([args.model] if args.model else
              [_random_model(args.preset, dtype, os.path.join(scratch, f"model-{dtype}")) for dtype in args.dtypes])
    for model in models:
      result = _measure(model, args, scratch)
      vision = result["spec"]["config"]["model"]["vision"]
      name = args.model or f"{args.preset}: ViT {vision['layers']}x{vision['width']}/{vision['patch_size']}"
      print(f"| {name} | {vision['image_size'][0]}x{vision['image_size'][1]} | {result['spec']['dtype']} "
            f"| {len(devices)} x {devices[0].device_kind} | {args.batch_size} | {result['workers']} "
            f"| {_rate_text(result['model'])} | {_rate_text(result['decode'])} | {_rate_text(result['index'])} |")
