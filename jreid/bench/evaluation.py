"""Evaluation speed: jreid's jitted ranking against NumPy and fast-reid.

Times `jreid.eval.evaluate` (features and records in, metrics out: similarity,
masks, ranking and metrics included) on random clustered features, as the
median of --repeats runs after a first, compiling run. Peers, on the host
CPU, at sizes whose distance matrix fits in memory: the NumPy reference
(tests/eval_reference.py, a torchreid-style per-query loop; needs a source
checkout) and fast-reid's Cython `rank_cy.evaluate_cy` when --fastreid-rank
(or $JREID_FASTREID_RANK) names the folder holding the built extension. Both
peers time their distance matrix (NumPy float32) too.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Callable

import jax
import numpy as np

from data_pipelines.records import Record
from jreid.eval import evaluate

_REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "tests" / (
    "eval_reference.py")


@dataclasses.dataclass(frozen=True)
class Size:
  num_query: int
  num_gallery: int
  num_ids: int
  num_cameras: int
  dim: int = 768
  peers: bool = True  # whether the host peers can run at this size


SIZES = {
    "tiny": Size(64, 512, 16, 6, dim=32),  # a smoke test
    "market": Size(3368, 15913, 751, 6),
    "100kx1m": Size(100_000, 1_000_000, 50_000, 15, peers=False),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--sizes", choices=tuple(SIZES), default="market",
                      help="market: 3,368 x 15,913; 100kx1m: 100,000 x "
                      "1,000,000 (for an accelerator; jreid only).")
  parser.add_argument("--device", choices=("cpu", "gpu", "tpu"),
                      default="cpu", help="where jreid runs.")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--peer-repeats", type=int, default=3)
  parser.add_argument("--block-size", type=int, default=None,
                      help="queries per block (default: jreid's choice).")
  parser.add_argument("--fastreid-rank",
                      default=os.environ.get("JREID_FASTREID_RANK", ""),
                      help="folder with fast-reid's built rank_cy extension.")
  parser.add_argument("--no-peers", action="store_true",
                      help="time jreid only.")
  parser.add_argument("--seed", type=int, default=0)


def make_case(size: Size, seed: int):
  """Clustered features (on the default device) and their records.

  Every identity has a centre, every camera an offset; each image adds noise.
  Each identity has at least one gallery image.
  """
  rng = np.random.default_rng(seed)
  gallery_pid = rng.permutation(np.concatenate([
      np.arange(size.num_ids),
      rng.integers(0, size.num_ids, size.num_gallery - size.num_ids)]))
  query_pid = rng.integers(0, size.num_ids, size.num_query)
  query_cam = rng.integers(0, size.num_cameras, size.num_query)
  gallery_cam = rng.integers(0, size.num_cameras, size.num_gallery)
  keys = jax.random.split(jax.random.key(seed), 4)
  centres = jax.random.normal(keys[0], (size.num_ids, size.dim))
  offsets = jax.random.normal(keys[1], (size.num_cameras, size.dim))

  def features(key, pid, cam):
    noise = jax.random.normal(key, (pid.size, size.dim))
    return centres[pid] + 0.5 * offsets[cam] + 2.0 * noise

  def records(prefix, pid, cam):
    return [Record(f"{prefix}{i}", int(p), int(c))
            for i, (p, c) in enumerate(zip(pid, cam))]

  return (features(keys[2], query_pid, query_cam),
          features(keys[3], gallery_pid, gallery_cam),
          records("q", query_pid, query_cam),
          records("g", gallery_pid, gallery_cam))


def _timed(fn: Callable[[], dict], repeats: int, warm_up: bool):
  """(seconds of the first run or None, median seconds, last result)."""
  first = None
  if warm_up:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - start)
  return first, statistics.median(times), result


def _load_module(name: str, path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _numpy_reference(query, gallery, query_records, gallery_records):
  reference = _load_module("eval_reference", _REFERENCE)
  return lambda: reference.evaluate(query, gallery, query_records,
                                    gallery_records, "standard",
                                    dtype=np.float32)[0]


def _fastreid(folder: str, query, gallery, query_records, gallery_records):
  sys.path.insert(0, folder)
  import rank_cy  # pylint: disable=import-outside-toplevel,import-error
  labels = [np.array([getattr(r, field) for r in records])
            for field in ("pid", "camid")
            for records in (query_records, gallery_records)]

  def run():
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    cmc, ap, inp = rank_cy.evaluate_cy(1.0 - q @ g.T, *labels, 50)
    return {"mAP": float(np.mean(ap)), "rank1": float(cmc[0]),
            "mINP": float(np.mean(inp))}

  return run


def run(args: argparse.Namespace) -> None:
  size = SIZES[args.sizes]
  device = jax.devices(args.device)[0]
  with jax.default_device(device):
    query, gallery, query_records, gallery_records = make_case(size,
                                                               args.seed)
    rows = [("jreid evaluate (jit)", f"{args.device}: {device.device_kind}",
             *_timed(lambda: evaluate(query, gallery, query_records,
                                      gallery_records, "standard",
                                      block_size=args.block_size),
                     args.repeats, warm_up=True), args.repeats)]
  if size.peers and not args.no_peers:
    host_query, host_gallery = np.asarray(query), np.asarray(gallery)
    peers = []
    if _REFERENCE.exists():
      peers.append(("NumPy reference", _numpy_reference(
          host_query, host_gallery, query_records, gallery_records)))
    if args.fastreid_rank:
      peers.append(("fast-reid rank_cy", _fastreid(
          args.fastreid_rank, host_query, host_gallery, query_records,
          gallery_records)))
    for name, fn in peers:
      rows.append((name, f"host cpu ({os.cpu_count()} cores)",
                   *_timed(fn, args.peer_repeats, warm_up=False),
                   args.peer_repeats))
  _print_table(args.sizes, size, rows)


def _print_table(name: str, size: Size, rows) -> None:
  print(f"\nEvaluation benchmark '{name}': {size.num_query:,} queries x "
        f"{size.num_gallery:,} gallery, d={size.dim}, {size.num_ids:,} ids, "
        f"{size.num_cameras} cameras, protocol 'standard'")
  print(f"{datetime.date.today().isoformat()}, jax {jax.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} host cores\n")
  print("| implementation | device | first run (s) | median (s) | runs | "
        "x jreid | mAP | rank-1 | mINP |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
  jreid_median = rows[0][3]
  for label, where, first, median, result, runs in rows:
    first_text = "-" if first is None else f"{first:.3f}"
    print(f"| {label} | {where} | {first_text} | {median:.3f} | {runs} | "
          f"{median / jreid_median:.1f} | {result['mAP']:.4f} | "
          f"{result['rank1']:.4f} | {result['mINP']:.4f} |")
