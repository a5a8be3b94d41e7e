"""Input pipeline speed: decode + augment images/s for 256x128 PNG and JPEG files, per core.

Writes --num-images synthetic 256x128 images per format (smooth random
colour fields with pixel noise, so that they compress about like photos;
JPEG quality 90) into a temporary folder, then times:
- in this process, no grain: decoding alone, and decoding + the training
  augmentations (flip, random crop with padding 10, colour jitter 0.2,
  random erasing 0.5), image after image;
- the training pipeline (pipeline.train_dataset: P x K = 16 x 4 batches of
  the same work) in the main process with one thread, and in N worker
  processes of one thread each. A timed run takes at least 8 batches per
  worker, so that the batches the workers hold ready when it starts are a
  small share of it.
Per core is images per CPU-second: the CPU time of this process and of its
worker processes (read from /proc) over the timed batches, so that it holds
on a shared machine; images/s is wall-clock. Each figure is the best of
--repeats timed runs. --out writes the report (benchmarks/DATA.md).
"""

from __future__ import annotations

import argparse
import datetime
from importlib import metadata
import multiprocessing
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
from jreid.bench import host_cpu

SIZE = (256, 128)
FORMATS = {"png": ("PNG", {}), "jpeg": ("JPEG", {"quality": 90})}
AUGMENT = pipeline.AugmentConfig(padding=10, flip=True, erasing=0.5, color_jitter=0.2)
BATCH = (16, 4)  # P identities x K images.
BATCHES_PER_WORKER = 8  # timed per run at least, so that the batches ready in the workers' buffers count little


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--num-images", type=int, default=512, help="files written per format (at least 64).")
  parser.add_argument("--batches", type=int, default=16,
                      help=f"batches of 64 per timed pipeline run (at least {BATCHES_PER_WORKER} per worker).")
  parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the best counts.")
  parser.add_argument("--workers", default="0,1,2",
                      help="comma-separated worker process counts (0: in the main process).")
  parser.add_argument("--formats", default="png,jpeg", help=f"comma-separated, of {', '.join(FORMATS)}.")
  parser.add_argument("--out", default="", help="also write the report, as markdown, to this file.")


def write_images(folder: pathlib.Path, image_format: str, count: int, seed: int = 0) -> list[Record]:
  """`count` synthetic 256x128 files, 4 per identity, as training records."""
  rng = np.random.default_rng(seed)
  name, options = FORMATS[image_format]
  records = []
  for i in range(count):
    coarse = Image.fromarray(rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)).resize((SIZE[1], SIZE[0]),
                                                                                       Image.BICUBIC)
    pixels = np.asarray(coarse, np.int16) + rng.normal(0, 6, (*SIZE, 3)).astype(np.int16)
    path = folder / f"{i:05d}.{image_format}"
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, format=name, **options)
    records.append(Record(str(path), pid=i // 4, camid=i % 6))
  return records


def _cpu_seconds() -> float:
  """CPU time of this process and of its live child processes (those read from /proc; NaN if unreadable)."""
  total = time.process_time()
  for child in multiprocessing.active_children():
    try:
      fields = pathlib.Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
      return float("nan")
    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
  return total


def _best_rates(step: Callable[[], None], images_per_step: int, repeats: int) -> tuple[float, float]:
  """(images/s, images per CPU-second) of `step`, each the best of `repeats` runs."""
  walls, cpus = [], []
  for _ in range(repeats):
    wall, cpu = time.perf_counter(), _cpu_seconds()
    step()
    walls.append(time.perf_counter() - wall)
    cpus.append(_cpu_seconds() - cpu)
  return images_per_step / min(walls), images_per_step / min(cpus)


def _augmented(path: str, rng: np.random.Generator) -> np.ndarray:
  image = images.random_crop_with_padding(images.random_flip(images.decode_image(path, SIZE), rng),
                                          AUGMENT.padding, rng)
  return images.random_erasing(images.color_jitter(image, rng, AUGMENT.color_jitter), rng, AUGMENT.erasing)


def _per_image(records: list[Record], work: Callable[[str, np.random.Generator], np.ndarray],
               repeats: int) -> tuple[float, float]:
  """Rates of `work` over every record, one after another."""
  rng = np.random.default_rng(0)
  work(records[0].path, rng)

  def step():
    for record in records:
      work(record.path, rng)

  return _best_rates(step, len(records), repeats)


def _pipeline(records: list[Record], workers: int, batches: int, repeats: int) -> tuple[float, float]:
  """Rates of the training pipeline, its workers started and buffers primed."""
  spec = pipeline.TrainBatchSpec(image_size=SIZE, num_ids=BATCH[0], num_instances=BATCH[1], augment=AUGMENT)
  iterator = iter(pipeline.train_dataset(records, spec, num_workers=workers, num_threads=1))
  try:
    for _ in range(2 * max(1, workers)):
      next(iterator)
    batches = max(batches, BATCHES_PER_WORKER * workers)

    def step():
      for _ in range(batches):
        next(iterator)

    return _best_rates(step, batches * BATCH[0] * BATCH[1], repeats)
  finally:
    if workers:
      iterator.close()


def _num_cores() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run(args: argparse.Namespace) -> None:
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags.
  load = os.getloadavg()[0]
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for image_format in args.formats.split(","):
      records = write_images(pathlib.Path(folder), image_format, args.num_images)
      size = sum(os.path.getsize(r.path) for r in records) / len(records) / 1024
      label = f"{image_format.upper()} ({size:.0f} KiB)"
      rows.append((label, "decode", "main",
                   *_per_image(records, lambda path, _: images.decode_image(path, SIZE), args.repeats)))
      rows.append((label, "decode + augment", "main", *_per_image(records, _augmented, args.repeats)))
      for workers in (int(w) for w in args.workers.split(",")):
        where = f"{workers} worker{'s' if workers > 1 else ''}" if workers else "main, 1 thread"
        rows.append((label, "pipeline", where, *_pipeline(records, workers, args.batches, args.repeats)))
  table = ["| files | what | processes | images/s | images per CPU-second |", "|---|---|---|---:|---:|",
           *(f"| {label} | {what} | {where} | {wall:,.0f} | {cpu:,.0f} |" for label, what, where, wall, cpu in rows)]
  machine = (f"{datetime.date.today().isoformat()}; {_num_cores()} cores (nproc), {host_cpu()}; load average "
             f"{load:.1f} before the run; Python {platform.python_version()}, numpy {np.__version__}, "
             f"pillow {PIL.__version__}, grain {metadata.version('grain')}.")
  print("\n".join(table + ["", machine]))
  if args.out:
    title, _, details = __doc__.partition("\n")
    command = (f"python -m jreid.bench data --num-images {args.num_images} --batches {args.batches} "
               f"--repeats {args.repeats} --workers {args.workers} --formats {args.formats} --out {args.out}")
    pathlib.Path(args.out).write_text("\n".join(
        [f"# {title}", "", f"    {command}", details.rstrip(), "", *table, "", machine, ""]))
