"""One clustering round: sparse k-reciprocal Jaccard (device) + DBSCAN (host), and a dense peer.

For each of --sizes, features [N, --dim] are a mixture of Gaussian clusters
(4 to 28 members, 16 on average; a unit centre plus a Gaussian offset of norm
about --noise, L2-normalised: at 2.0 and 512-d, members of one cluster are at
cosine 0.2 on average, others at 0 +- 0.044) so that DBSCAN finds clusters,
put on the default device first. A round (k1 = 30, k2 = 6, eps = 0.6,
min_samples = 4) is timed as the median of --repeats runs after a first,
compiling run:

  jaccard  features to the distances on the host: jreid's
           `k_reciprocal_jaccard(..., max_distance=eps)`, which keeps the
           pairs DBSCAN can use (--all-pairs: every pair below distance 1)
  dbscan   `jreid.cluster.cluster` (scikit-learn, sparse precomputed)

--dense adds a peer in the style of cluster-contrast's compute_jaccard_distance,
vectorised on the same device: the [N, N] similarity, set mask, V (before and
after query expansion) and Jaccard matrices, then DBSCAN on the dense matrix.
Sizes whose N x N arrays would not fit are skipped, saying so.

Each (size, implementation) runs in a fresh process, which reports its peak
host RSS (getrusage) and the device's peak bytes in use (memory_stats, where
the backend keeps them). Prints a Markdown table, with the pairwise F-score of
the pseudo labels against the mixture's clusters.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import multiprocessing
import os
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import sklearn
from jax import lax
from sklearn.cluster import DBSCAN

from jreid.bench import host_cpu
from jreid.cluster import cluster, k_reciprocal_jaccard, pairwise_scores
from jreid.eval.rerank import expansion_columns

K1, K2, EPS, MIN_SAMPLES = 30, 6, 0.6, 4
_GIB = 2**30


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--sizes", default="10000,35000,100000", help="comma-separated numbers of images")
  parser.add_argument("--dim", type=int, default=512, help="feature dimension")
  parser.add_argument("--dense", action="store_true", help="also time the dense peer")
  parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the first (median)")
  parser.add_argument("--noise", type=float, default=2.0, help="norm of each image's offset from its centre")
  parser.add_argument("--all-pairs", action="store_true",
                      help="keep every pair below distance 1 (max_distance=None), not only those within eps")
  parser.add_argument("--chunk", type=int, default=256, help="rows per step of k_reciprocal_jaccard")
  parser.add_argument("--seed", type=int, default=0)


def mixture(n: int, dim: int, noise: float, seed: int):
  """(features [N, dim] float32 L2-normalised, cluster labels [N]) of a Gaussian mixture."""
  rng = np.random.default_rng(seed)
  sizes = rng.integers(4, 29, n // 4 + 1)
  labels = np.repeat(np.arange(len(sizes)), sizes)[:n]
  centres = rng.normal(size=(labels[-1] + 1, dim))
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)
  x = centres[labels] + noise * rng.normal(size=(n, dim)) / np.sqrt(dim)
  return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


@functools.partial(jax.jit, static_argnames=("k1", "k2"))
def _dense_encodings(features, *, k1: int, k2: int):
  """Dense V [N, N] after query expansion, and its largest row support."""
  n = features.shape[0]
  sims = jnp.dot(features, features.T, precision=lax.Precision.HIGHEST)
  ranks = lax.top_k(sims, k1 + 1)[1]
  members = jnp.zeros((n, n), bool).at[jnp.arange(n)[:, None], expansion_columns(ranks, k1)].set(True, mode="drop")
  v = jnp.where(members, jnp.exp(2.0 * sims - 2.0), 0.0)
  v = v / jnp.sum(v, axis=1, keepdims=True)
  if k2 > 1:
    v = sum(v[ranks[:, s]] for s in range(k2)) / k2
  return v, jnp.max(jnp.sum(v > 0, axis=1))


@functools.partial(jax.jit, static_argnames=("support",))
def _dense_jaccard(v, *, support: int):
  """[N, N] Jaccard distances, 16 rows at a time over each row's `support` non-zero entries."""
  n, rows = v.shape[0], 16
  columns = v.T

  def block(block_rows):
    values, items = lax.top_k(block_rows, support)
    shared = jnp.sum(jnp.minimum(values[:, :, None], columns[items]), axis=1)
    return jnp.maximum(1.0 - shared / (2.0 - shared), 0.0)

  padded = jnp.pad(v, ((0, -n % rows), (0, 0)))
  return lax.map(block, padded.reshape(-1, rows, n)).reshape(-1, n)[:n]


def _dense_round_jaccard(features) -> np.ndarray:
  v, support = _dense_encodings(features, k1=K1, k2=K2)
  return np.asarray(_dense_jaccard(v, support=1 << max(int(support) - 1, 0).bit_length()))


def _dense_dbscan(distances: np.ndarray) -> np.ndarray:
  return DBSCAN(eps=EPS, min_samples=MIN_SAMPLES, metric="precomputed").fit_predict(distances)


def _dense_fits(n: int, device) -> str | None:
  """Why the dense peer cannot run at size n on device, or None.

  It holds about 6 N x N float32 arrays on the device (similarity, set mask,
  V before and after query expansion, V^T, Jaccard) and 3 on the host (the
  Jaccard matrix and DBSCAN's work on it); on a CPU both are host memory.
  """
  with open("/proc/meminfo") as f:
    host = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))
  device_limit = (device.memory_stats() or {}).get("bytes_limit")
  if device_limit is None:
    needs = [(9 * 4 * n * n, host, "host")]
  else:
    needs = [(6 * 4 * n * n, device_limit, "device"), (3 * 4 * n * n, host, "host")]
  for need, have, where in needs:
    if need > 0.9 * have:
      return f"skipped: its N x N arrays need about {need / _GIB:.0f} GiB of {where} memory, {have / _GIB:.0f} GiB free"
  return None


def _rss_gib() -> float:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _GIB


def measure(n: int, implementation: str, args: argparse.Namespace) -> dict:
  """One row of the table, measured in the calling (fresh) process."""
  device = jax.devices()[0]
  kind = device.device_kind
  row = {"n": n, "implementation": implementation,
         "device": kind if kind == jax.default_backend() else f"{jax.default_backend()}: {kind}"}
  if implementation == "dense":
    reason = _dense_fits(n, device)
    if reason:
      return {**row, "skipped": reason}
    round_jaccard, round_dbscan = _dense_round_jaccard, _dense_dbscan
  else:
    round_jaccard = functools.partial(k_reciprocal_jaccard, k1=K1, k2=K2, chunk=args.chunk,
                                      max_distance=None if args.all_pairs else EPS)
    round_dbscan = functools.partial(cluster, eps=EPS, min_samples=MIN_SAMPLES)
  host_features, truth = mixture(n, args.dim, args.noise, args.seed)
  features = jax.device_put(host_features, device)
  row["rss_before"] = _rss_gib()
  start = time.perf_counter()
  round_jaccard(features)
  row["first"] = time.perf_counter() - start
  times = {"jaccard": [], "dbscan": []}
  for _ in range(args.repeats):
    start = time.perf_counter()
    distances = round_jaccard(features)
    middle = time.perf_counter()
    labels = round_dbscan(distances)
    times["jaccard"].append(middle - start)
    times["dbscan"].append(time.perf_counter() - middle)
  row.update({name: statistics.median(values) for name, values in times.items()})
  row["total"] = statistics.median(map(sum, zip(*times.values())))
  row["width"] = distances.indices.shape[1] if implementation == "sparse" else n
  row.update(pairwise_scores(labels, truth))
  row["rss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / _GIB
  peak = (device.memory_stats() or {}).get("peak_bytes_in_use")
  row["device_peak"] = None if peak is None else peak / _GIB
  return row


def _measure_in_fresh_process(n: int, implementation: str, args: argparse.Namespace) -> dict:
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    try:
      return pool.submit(measure, n, implementation, args).result()
    except concurrent.futures.process.BrokenProcessPool:
      return {"n": n, "implementation": implementation, "skipped": "failed: the process died (out of memory?)"}


def _print_row(row: dict, dim: int) -> None:
  name = {"sparse": "jreid k_reciprocal_jaccard + cluster", "dense": "dense N x N (cluster-contrast style)"}
  if "skipped" in row:
    print(f"| {name[row['implementation']]} | {row['n']:,} | {dim} | {row.get('device', '-')} | {row['skipped']} "
          "| | | | | | | | | |")
    return
  device_peak = "n/a" if row["device_peak"] is None else f"{row['device_peak']:.2f}"
  print(f"| {name[row['implementation']]} | {row['n']:,} | {dim} | {row['device']} | {row['first']:.2f} "
        f"| {row['jaccard']:.3f} | {row['dbscan']:.3f} | {row['total']:.3f} | {row['width']:,} | {row['clusters']:,} "
        f"| {row['outliers']:,} | {row['fscore']:.4f} | {row['rss_before']:.2f} / {row['rss_peak']:.2f} "
        f"| {device_peak} |")


def run(args: argparse.Namespace) -> None:
  sizes = [int(size) for size in args.sizes.split(",")]
  print(f"Clustering round benchmark: k1={K1}, k2={K2}, eps={EPS}, min_samples={MIN_SAMPLES}, "
        f"{'all pairs' if args.all_pairs else 'pairs within eps'} kept, Gaussian mixture "
        f"(noise {args.noise}), {args.repeats} timed rounds after a first; {datetime.date.today().isoformat()}, "
        f"jax {jax.__version__}, scikit-learn {sklearn.__version__}, NumPy {np.__version__}, "
        f"Python {platform.python_version()}, host {os.cpu_count()} x {host_cpu()}\n")
  print("| implementation | N | dim | device | first run (s) | jaccard (s) | dbscan (s) | total (s) | graph width "
        "| clusters | outliers | pairwise F | host RSS start / peak (GiB) | device peak (GiB) |")
  print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for n in sizes:
    for implementation in ("sparse", "dense") if args.dense else ("sparse",):
      row = _measure_in_fresh_process(n, implementation, args)
      _print_row(row, args.dim)
