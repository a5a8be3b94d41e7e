"""k-reciprocal Jaccard distances for clustering, on the device, without N x N arrays.

The distance unsupervised ReID clusters with (cluster-contrast, PGM, ITKM),
after k-reciprocal re-ranking (Zhong et al., CVPR 2017), on L2-normalised
features f: R(i, k1) are the k-reciprocal neighbours of i among its k1 + 1
most similar items (itself included, as published; cluster-contrast's search
returns k1; ties: lower index first), expanded by
each R(c, round(k1 / 2)), c in R(i, k1), sharing more than two thirds of its
items with R(i, k1) (`jreid.eval.rerank.expansion_columns`); V[i] holds
exp(-d(i, j)) over that set, d = 2 - 2 f_i.f_j (squared Euclidean, not scaled
per row as evaluation re-ranking does), normalised to sum 1, then is averaged
over i's k2 nearest (itself included) when k2 > 1; the distance is
1 - S / (2 - S), S(i, j) = sum_k min(V[i, k], V[j, k]), clipped at 0.

Memory follows the neighbour lists, not N^2: similarities are computed in row
chunks and only the k1 + 1 nearest kept (`jax.lax.top_k`); the sets, the V
rows and their inverted index are padded lists; the distances are evaluated,
a chunk of rows at a time, only for the pairs sharing an item of V. Other
pairs are at distance 1 and absent from the result. List widths are read
back from the device and rounded up to powers of two (three small
transfers), which bounds recompilation.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from scipy import sparse

from jreid.eval.rerank import expansion_columns

# Bound on the (row, shared item, partner) triples one chunk of the distance
# step holds: about 12 bytes each.
_TRIPLES_PER_CHUNK = 2**24


@dataclasses.dataclass(frozen=True)
class NeighbourGraph:
  """Sparse Jaccard distances: row i lists its partners, the items sharing a V entry with i.

  indices: [N, M] int32, partners in ascending order (i itself included;
  only those within the max_distance asked for), then N in unused slots.
  distances: [N, M] float32, 1.0 in unused slots.
  """

  indices: np.ndarray
  distances: np.ndarray

  @property
  def num_items(self) -> int:
    return self.indices.shape[0]

  def to_csr(self, eps_cutoff: float | None = None) -> sparse.csr_matrix:
    """[N, N] CSR of the stored pairs (distance <= eps_cutoff if given).

    Zero distances stay explicit entries: DBSCAN's sparse precomputed input
    treats stored entries as candidates and absent ones as unreachable.
    """
    n = self.num_items
    keep = self.indices < n
    if eps_cutoff is not None:
      keep &= self.distances <= eps_cutoff
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    return sparse.csr_matrix((self.distances[keep], self.indices[keep], indptr), shape=(n, n))


def _power_of_two(size: int, cap: int) -> int:
  """The smallest power of two >= size (at least 1), at most cap."""
  return min(1 << max(int(size) - 1, 0).bit_length(), cap)


def _map_rows(fn, n: int, chunk: int):
  """fn over the rows 0..n-1, `chunk` rows (int32 [chunk]) at a time, outputs concatenated.

  The last chunk is padded with copies of row n - 1, cut off afterwards.
  """
  chunks = -(-n // chunk)
  rows = jnp.minimum(jnp.arange(chunks * chunk, dtype=jnp.int32), n - 1)
  out = lax.map(fn, rows.reshape(chunks, chunk))
  return jax.tree.map(lambda x: x.reshape(chunks * chunk, *x.shape[2:])[:n], out)


def _unique_sorted(columns: jax.Array, n: int) -> jax.Array:
  """Each row's distinct items in ascending order, then n."""
  columns = jnp.sort(columns, axis=1)
  repeat = jnp.concatenate([jnp.zeros_like(columns[:, :1], bool), columns[:, 1:] == columns[:, :-1]], axis=1)
  return jnp.sort(jnp.where(repeat, n, columns), axis=1)


@functools.partial(jax.jit, static_argnames=("k1", "chunk"))
def _expanded_sets(features: jax.Array, *, k1: int, chunk: int):
  """The k1 + 1 nearest [N, k1 + 1], the expanded sets [N, W] (n-padded), the largest set size."""
  n = features.shape[0]

  def nearest(rows):
    scores = jnp.dot(features[rows], features.T, precision=lax.Precision.HIGHEST)
    return lax.top_k(scores, k1 + 1)[1].astype(jnp.int32)

  ranks = _map_rows(nearest, n, chunk)
  members = _map_rows(lambda rows: _unique_sorted(expansion_columns(ranks, k1, rows), n), n, chunk)
  return ranks, members, jnp.max(jnp.sum(members < n, axis=1))


@functools.partial(jax.jit, static_argnames=("k2", "chunk"))
def _encodings(features: jax.Array, ranks: jax.Array, members: jax.Array, *, k2: int, chunk: int):
  """Sparse V rows (items [N, W] n-padded, ascending; weights), the widest row, the longest column."""
  n = members.shape[0]

  def weights(rows):
    items = members[rows]
    sims = jnp.einsum("rd,rwd->rw", features[rows], features[jnp.minimum(items, n - 1)],
                      precision=lax.Precision.HIGHEST)
    w = jnp.where(items < n, jnp.exp(2.0 * sims - 2.0), 0.0)
    total = jnp.sum(w, axis=1, keepdims=True)
    return jnp.where(total > 0, w / jnp.where(total > 0, total, 1.0), 0.0)

  values = _map_rows(weights, n, chunk)

  def expand(rows):
    # Mean of the V rows of each row's k2 nearest: merge their lists, sum
    # runs of one item (at most k2 long, since no list repeats an item).
    source = ranks[rows, :k2]
    items = members[source].reshape(len(rows), -1)
    w = values[source].reshape(len(rows), -1) / k2
    items, w = lax.sort((items, w), dimension=1, num_keys=1)
    total = w
    for step in range(1, k2):
      total = total.at[:, :-step].add(jnp.where(items[:, step:] == items[:, :-step], w[:, step:], 0.0))
    first = jnp.concatenate([jnp.ones_like(items[:, :1], bool), items[:, 1:] != items[:, :-1]], axis=1)
    items, total = lax.sort((jnp.where(first, items, n), total), dimension=1, num_keys=1)
    return items, jnp.where(items < n, total, 0.0)

  if k2 > 1:
    members, values = _map_rows(expand, n, chunk)
  longest = jnp.max(jnp.bincount(members.reshape(-1), length=n + 1)[:n])
  return members, values, jnp.max(jnp.sum(members < n, axis=1)), longest


def _inverted_index(members: jax.Array, values: jax.Array, depth: int):
  """[N + 1, depth] rows holding each item in V (ascending, n-padded) and their weights; row N is empty."""
  n, width = members.shape
  items = members.reshape(-1)
  order = jnp.argsort(items, stable=True)
  items = items[order]
  holders = (order // width).astype(jnp.int32)
  counts = jnp.bincount(items, length=n + 1)
  position = jnp.arange(n * width) - (jnp.cumsum(counts) - counts)[items]
  target = jnp.where(items < n, items, n + 1)  # padding: dropped
  rows = jnp.full((n + 1, depth), n, jnp.int32).at[target, position].set(holders, mode="drop")
  weights = jnp.zeros((n + 1, depth), jnp.float32).at[target, position].set(values.reshape(-1)[order], mode="drop")
  return rows, weights


@functools.partial(jax.jit, static_argnames=("depth", "width", "chunk"))
def _jaccard(members: jax.Array, values: jax.Array, max_distance: jax.Array, *, depth: int, width: int,
             chunk: int):
  """Partners [N, width] (ascending, n-padded), their distances, and each row's partner count."""
  n = members.shape[0]
  holder_rows, holder_weights = _inverted_index(members, values, depth)

  def block(rows):
    items, w = members[rows], values[rows]  # [c, W]
    partners = holder_rows[items]  # [c, W, depth]
    shared = jnp.minimum(w[..., None], holder_weights[items])
    line = jnp.arange(len(rows))[:, None, None]
    s = jnp.zeros((len(rows), n), jnp.float32).at[line, partners].add(shared, mode="drop")  # padding: n
    distance = jnp.maximum(1.0 - s / (2.0 - s), 0.0)
    keep = (s > 0) & (distance <= max_distance)
    # The t-th kept partner is where the running count first reaches t (n: none).
    running = jnp.cumsum(keep, axis=1, dtype=jnp.int32)
    wanted = jnp.arange(1, width + 1, dtype=jnp.int32)
    indices = jax.vmap(lambda r: jnp.searchsorted(r, wanted))(running).astype(jnp.int32)
    distances = jnp.where(indices < n, jnp.take_along_axis(distance, jnp.minimum(indices, n - 1), axis=1), 1.0)
    return indices, distances, running[:, -1]

  return _map_rows(block, n, chunk)


def k_reciprocal_jaccard(features, k1: int = 30, k2: int = 6, chunk: int = 256,
                         max_distance: float | None = None) -> NeighbourGraph:
  """Sparse k-reciprocal Jaccard distances of L2-normalised features [N, D] (module docstring).

  chunk: rows per step (the similarity and distance steps hold chunk x N
  floats). max_distance: keep only the pairs at most this far (None: every
  pair sharing a V entry, i.e. every distance below 1); clustering needs no
  pair beyond DBSCAN's eps, and all pairs can reach thousands per item.
  """
  features = jnp.asarray(features, jnp.float32)
  if features.ndim != 2 or not 1 <= k2 <= k1 + 1 or k1 >= features.shape[0]:
    raise ValueError(f"k_reciprocal_jaccard needs features [N, D] with N > k1 and 1 <= k2 <= k1 + 1; got shape "
                     f"{features.shape}, k1={k1}, k2={k2}")
  n = features.shape[0]
  chunk = max(1, min(chunk, n))
  ranks, members, widest = _expanded_sets(features, k1=k1, chunk=chunk)
  members = members[:, :_power_of_two(widest, members.shape[1])]
  members, values, widest, longest = _encodings(features, ranks, members, k2=k2, chunk=chunk)
  width = _power_of_two(widest, members.shape[1])
  members, values = members[:, :width], values[:, :width]
  depth = _power_of_two(longest, n)
  rows = max(1, min(chunk, 1 << (max(_TRIPLES_PER_CHUNK // (width * depth), 1).bit_length() - 1)))
  limit = jnp.float32(np.inf if max_distance is None else max_distance)
  distance_step = functools.partial(_jaccard, members, values, limit, depth=depth, chunk=rows)
  out_width = min(width, n)
  indices, distances, counts = distance_step(width=out_width)
  most = int(jnp.max(counts))
  if most > out_width:  # more partners than V entries: once more, wide enough
    out_width = _power_of_two(most, n)
    indices, distances, _ = distance_step(width=out_width)
  used = _power_of_two(most, out_width)
  return NeighbourGraph(np.asarray(indices[:, :used]), np.asarray(distances[:, :used]))
