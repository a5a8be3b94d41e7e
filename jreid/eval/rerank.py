"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), average query expansion.

Re-ranking follows the published algorithm over the N = Q + G probes and
gallery items: distances d are squared Euclidean distances (of L2-normalised
features for 'cosine'; the published code squares the Euclidean distances it
is given), each row divided by its maximum; R(i, k) are the k-reciprocal
neighbours of i among its k + 1 nearest (ties: lower index first); R(i, k1)
grows by each R(c, round(k1 / 2)), c in R(i, k1), that shares more than two
thirds of its items with R(i, k1); V[i] holds exp(-d[i, j]) over that set,
normalised to sum 1, then is averaged over i's k2 nearest (k2 > 1); the
Jaccard distance is 1 - S / (2 - S), S[i, j] = sum_k min(V[i, k], V[j, k]),
and the result (1 - lambda) * Jaccard + lambda * d.

It holds N x N matrices on the device: suited to benchmark-size galleries
(Market-1501: N = 19,281), not to million-item ones. Clustering uses the
same neighbour sets without any N x N matrix (`jreid.cluster.jaccard`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jreid.eval.ranking import prepare_features, prepared_scores

# Queries per block of the Jaccard step.
_JACCARD_BLOCK = 16


def _reciprocal(neighbours: jax.Array, items: jax.Array) -> jax.Array:
  """[*items.shape, k] bool: whether each item is among the k nearest of
  each of its own k nearest."""
  return jnp.any(neighbours[neighbours[items]] == items[..., None, None],
                 axis=-1)


def expansion_columns(nearest: jax.Array, k1: int,
                      rows: jax.Array | None = None) -> jax.Array:
  """Expanded k-reciprocal sets of `rows` (default: all) as padded columns.

  nearest: [N, k1 + 1] each item's nearest items, nearest first (itself
  included). Returns [R, (k1 + 1) * (1 + H)] int32, H = round(k1 / 2) + 1:
  R(i, k1), then each R(c, round(k1 / 2)) accepted by the two-thirds rule;
  items may repeat, unused slots hold N.
  """
  n = nearest.shape[0]
  rows = jnp.arange(n) if rows is None else rows
  half = nearest[:, :int(round(k1 / 2)) + 1]
  own = nearest[rows]  # [R, K]
  recip = _reciprocal(nearest, rows)
  # Candidate c = own[r, a]; its set is half[c, b] where cand_valid[r, a, b].
  cand_set, cand_valid = half[own], _reciprocal(half, own)  # [R, K, H]
  in_set = jnp.any(
      (cand_set[..., None] == own[:, None, None, :])
      & recip[:, None, None, :], axis=-1)
  overlap = jnp.sum(cand_valid & in_set, axis=-1)
  size = jnp.sum(cand_valid, axis=-1)
  accept = recip & (3 * overlap > 2 * size)
  return jnp.concatenate([
      jnp.where(recip, own, n),
      jnp.where(accept[..., None] & cand_valid, cand_set,
                n).reshape(len(own), -1),
  ], axis=1).astype(jnp.int32)


def _expansion_sets(dist: jax.Array, k1: int) -> tuple[jax.Array, jax.Array]:
  """Dense [N, N] mask of each item's expanded k-reciprocal set, and ranks."""
  n = dist.shape[0]
  _, nearest = lax.top_k(-dist, k1 + 1)
  columns = expansion_columns(nearest, k1)
  members = jnp.zeros((n, n), bool).at[jnp.arange(n)[:, None], columns].set(
      True, mode="drop")
  return members, nearest


@functools.partial(jax.jit, static_argnames=("k1", "k2", "metric"))
def _encoded_distances(query_features, gallery_features, lambda_value, *,
                       k1: int, k2: int, metric: str):
  """Normalised distances d and the encodings V (after query expansion)."""
  features = prepare_features(
      jnp.concatenate([query_features, gallery_features]).astype(jnp.float32),
      metric)
  dist = -prepared_scores(features, features, "euclidean")
  dist = jnp.where(dist > 0, dist, 0.0)
  dist = dist / jnp.maximum(jnp.max(dist, axis=1, keepdims=True), 1e-12)
  members, nearest = _expansion_sets(dist, k1)
  weight = jnp.where(members, jnp.exp(-dist), 0.0)
  encoding = weight / jnp.maximum(jnp.sum(weight, axis=1, keepdims=True),
                                  1e-12)
  if k2 > 1:  # one [N, N] gather at a time
    encoding = sum(encoding[nearest[:, s]] for s in range(k2)) / k2
  num_query = query_features.shape[0]
  support = jnp.max(jnp.sum(encoding[:num_query] > 0, axis=1))
  base = dist[:num_query, num_query:] * lambda_value
  return base, encoding, support


@functools.partial(jax.jit, static_argnames=("num_query", "support"))
def _jaccard(encoding, *, num_query: int, support: int):
  """[Q, G] Jaccard distances from the encodings of queries and gallery."""
  gallery_columns = encoding[num_query:].T  # [N, G]

  def block(rows):
    values, index = lax.top_k(rows, support)  # the non-zero entries
    shared = jnp.sum(jnp.minimum(values[:, :, None],
                                 gallery_columns[index]), axis=1)
    return 1.0 - shared / (2.0 - shared)

  queries = encoding[:num_query]
  num_blocks = -(-num_query // _JACCARD_BLOCK)
  pad = num_blocks * _JACCARD_BLOCK - num_query
  queries = jnp.pad(queries, ((0, pad), (0, 0)))
  out = lax.map(block, queries.reshape(num_blocks, _JACCARD_BLOCK, -1))
  return out.reshape(-1, out.shape[-1])[:num_query]


def k_reciprocal_distances(query_features: jax.Array,
                           gallery_features: jax.Array, k1: int = 20,
                           k2: int = 6, lambda_value: float = 0.3,
                           metric: str = "cosine") -> jax.Array:
  """[Q, G] re-ranked distances (lower is closer); see the module docstring."""
  base, encoding, support = _encoded_distances(
      query_features, gallery_features, lambda_value, k1=k1, k2=k2,
      metric=metric)
  # A power of two >= the largest support bounds the number of compilations.
  bucket = min(int(2 ** np.ceil(np.log2(max(int(support), 1)))),
               encoding.shape[1])
  jaccard = _jaccard(encoding, num_query=query_features.shape[0],
                     support=bucket)
  return jaccard * (1.0 - lambda_value) + base


@functools.partial(jax.jit, static_argnames=("k", "metric"))
def average_query_expansion(query_features: jax.Array,
                            gallery_features: jax.Array, k: int = 5,
                            metric: str = "cosine") -> jax.Array:
  """Each query averaged with its k nearest gallery items (Chum et al. 2007).

  Neighbours come from the unmodified ranking (ties: lower index first);
  for 'cosine' the features are L2-normalised before and after averaging.
  """
  query, gallery = (prepare_features(x, metric)
                    for x in (query_features, gallery_features))
  _, nearest = lax.top_k(prepared_scores(query, gallery, metric), k)
  expanded = (query[0].astype(jnp.float32)
              + jnp.sum(gallery[0][nearest].astype(jnp.float32), axis=1))
  expanded /= k + 1
  return prepare_features(expanded, metric)[0]
