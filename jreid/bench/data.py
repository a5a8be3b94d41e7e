"""Input pipeline speed: decode + augment images/s for 256x128 PNG and JPEG files, per core.

Writes --num-images synthetic 256x128 images per format (smooth random
colour fields with pixel noise, so that they compress about like photos;
JPEG quality 90) into a temporary folder, then times:
- one core, no grain: decoding alone, and decoding + the training
  augmentations (random crop with padding 10, flip, colour jitter 0.2,
  random erasing 0.5), image after image;
- the training pipeline (pipeline.train_dataset, P x K = 16 x 4 batches of
  the same work) in the main process with one thread, and in 1..N worker
  processes of one thread each; per core = images/s over the worker count.
The report is a markdown table with the machine, versions and date; --out
writes it to a file too (benchmarks/DATA.md).
"""

from __future__ import annotations

import argparse
import datetime
from importlib import metadata
import os
import pathlib
import platform
import tempfile
import time
from typing import Callable

import numpy as np
import PIL
from absl import flags
from PIL import Image

from data_pipelines import images
from data_pipelines import pipeline
from data_pipelines.records import Record

SIZE = (256, 128)
FORMATS = {"png": ("PNG", {}), "jpeg": ("JPEG", {"quality": 90})}
AUGMENT = pipeline.AugmentConfig(padding=10, flip=True, erasing=0.5, color_jitter=0.2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--num-images", type=int, default=512, help="files written per format.")
  parser.add_argument("--batches", type=int, default=24, help="batches of 64 timed per pipeline run.")
  parser.add_argument("--workers", default="0,1,2",
                      help="comma-separated worker process counts (0: in the main process).")
  parser.add_argument("--formats", default="png,jpeg", help=f"comma-separated, of {', '.join(FORMATS)}.")
  parser.add_argument("--out", default="", help="also write the markdown report to this file.")


def write_images(folder: pathlib.Path, image_format: str, count: int, seed: int = 0) -> list[Record]:
  """`count` synthetic 256x128 files, 8 per identity, as training records."""
  rng = np.random.default_rng(seed)
  name, options = FORMATS[image_format]
  records = []
  for i in range(count):
    coarse = Image.fromarray(rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)).resize((SIZE[1], SIZE[0]),
                                                                                       Image.BICUBIC)
    pixels = np.asarray(coarse, np.int16) + rng.normal(0, 6, (*SIZE, 3)).astype(np.int16)
    path = folder / f"{i:05d}.{image_format}"
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, format=name, **options)
    records.append(Record(str(path), pid=i // 8, camid=i % 6))
  return records


def _per_image(records: list[Record], work: Callable[[str, np.random.Generator], np.ndarray]) -> float:
  """Images/s of `work` over every record, one after another."""
  rng = np.random.default_rng(0)
  work(records[0].path, rng)
  start = time.perf_counter()
  for record in records:
    work(record.path, rng)
  return len(records) / (time.perf_counter() - start)


def _pipeline_rate(records: list[Record], workers: int, batches: int) -> float:
  """Images/s of the training pipeline after its first batches."""
  spec = pipeline.TrainBatchSpec(image_size=SIZE, num_ids=16, num_instances=4, augment=AUGMENT)
  iterator = iter(pipeline.train_dataset(records, spec, num_workers=workers, num_threads=1))
  try:
    for _ in range(max(2, workers)):  # Workers started, buffers primed.
      next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
      next(iterator)
    return batches * spec.num_ids * spec.num_instances / (time.perf_counter() - start)
  finally:
    if workers:
      iterator.close()


def _augmented(path: str, rng: np.random.Generator) -> np.ndarray:
  image = images.decode_image(path, SIZE)
  image = images.random_crop_with_padding(images.random_flip(image, rng), AUGMENT.padding, rng)
  return images.random_erasing(images.color_jitter(image, rng, AUGMENT.color_jitter), rng, AUGMENT.erasing)


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


def run(args: argparse.Namespace) -> None:
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags.
  workers = [int(w) for w in args.workers.split(",")]
  load = os.getloadavg()[0]
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for image_format in args.formats.split(","):
      records = write_images(pathlib.Path(folder), image_format, args.num_images)
      size = sum(os.path.getsize(r.path) for r in records) / len(records) / 1024
      label = f"{image_format.upper()} ({size:.0f} KiB)"
      decode = _per_image(records, lambda path, rng: images.decode_image(path, SIZE))
      rows.append((label, "decode, one core", 1, decode, decode))
      augmented = _per_image(records, _augmented)
      rows.append((label, "decode + augment, one core", 1, augmented, augmented))
      for count in workers:
        rate = _pipeline_rate(records, count, args.batches)
        where = f"pipeline, {count} worker process{'es' if count > 1 else ''}" if count else (
            "pipeline, main process")
        rows.append((label, where, max(count, 1), rate, rate / max(count, 1)))
  table = [
      "| files | what | processes | images/s | images/s per core |",
      "|---|---|---:|---:|---:|",
      *(f"| {label} | {what} | {cores} | {rate:,.0f} | {per_core:,.0f} |"
        for label, what, cores, rate, per_core in rows),
  ]
  machine = (f"{datetime.date.today().isoformat()}; {_num_cores()} cores (nproc), {_cpu_model()}; load average "
             f"{load:.1f} before the run; Python {platform.python_version()}, numpy {np.__version__}, "
             f"pillow {PIL.__version__}, grain {metadata.version('grain')}.")
  print("\n".join(table + ["", machine]))
  if args.out:
    title, _, details = __doc__.partition("\n")
    command = (f"python -m jreid.bench data --num-images {args.num_images} --batches {args.batches} "
               f"--workers {args.workers} --formats {args.formats} --out {args.out}")
    pathlib.Path(args.out).write_text("\n".join(
        [f"# {title}", "", f"    {command}", details.rstrip(), "", *table, "", machine, ""]))


def _num_cores() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
