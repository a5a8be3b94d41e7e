"""What ITKM recomputes at each round: groups, pseudo labels, memories, DRU, CHM and IHM (METHODS.md, ITKM).

A "domain" is one (scenario, group) pair, numbered 2·scenario + group, so
that `domain ^ 1` is the other group of the same scenario. Cluster ids are
global over domains. Every array has a fixed shape (N training images, C
cluster slots) so that the train step compiles once and the state
checkpoints with one template.
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jreid.cluster import dbscan, jaccard, matching, quality
from jreid.cluster.groups import split_groups
from jreid.ops import l2_normalize


@flax.struct.dataclass
class RoundState:
  """The pseudo-label state the train steps read.

  labels: [N] int32 cluster of each training image, -1 for an outlier.
  domain: [N] int32 2·scenario + group of each training image.
  cluster_domain: [C] int32 domain of each cluster, -1 for an unused slot.
  memory: [C, D] cluster centroids (momentum-updated by the image steps).
  partner: [C] int32 the matched cluster of the other group (CHM), -1 none.
  bank: [N, D] the round's image features (IHM's instance memory; Stage II's frozen features).
  positives: [N, k] int32 IHM's positive images of the other group, -1 padded.
  instance_text: [N, D] per-image text features; cluster_text: [C, D] per-cluster text features.
  group_centroids: [2, D] the clothes-change k-means centroids of the initial features.
  """

  labels: jax.Array
  domain: jax.Array
  cluster_domain: jax.Array
  memory: jax.Array
  partner: jax.Array
  bank: jax.Array
  positives: jax.Array
  instance_text: jax.Array
  cluster_text: jax.Array
  group_centroids: jax.Array


def empty_round(num_images: int, capacity: int, dim: int, ihm_k: int) -> RoundState:
  """A round state with no clusters (the shapes of every round)."""
  return RoundState(
      labels=jnp.full((num_images,), -1, jnp.int32), domain=jnp.full((num_images,), -1, jnp.int32),
      cluster_domain=jnp.full((capacity,), -1, jnp.int32), memory=jnp.zeros((capacity, dim), jnp.float32),
      partner=jnp.full((capacity,), -1, jnp.int32), bank=jnp.zeros((num_images, dim), jnp.float32),
      positives=jnp.full((num_images, ihm_k), -1, jnp.int32),
      instance_text=jnp.zeros((num_images, dim), jnp.float32), cluster_text=jnp.zeros((capacity, dim), jnp.float32),
      group_centroids=jnp.zeros((2, dim), jnp.float32))


def assign_domains(records, scenario: np.ndarray, group: np.ndarray, initial: np.ndarray,
                   clothes_change: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(domain [N], clothes-change centroids [2, D]).

  Groups fixed by the records (group ≥ 0) are kept; the clothes-change
  images (group -1) are split by k-means (k = 2) on their initial features.
  """
  group = group.copy()
  centroids = np.zeros((2, initial.shape[1]), np.float32)
  undecided = np.flatnonzero(group < 0)
  if len(undecided):
    if np.any(scenario[undecided] != clothes_change):
      raise ValueError("only clothes-change images are grouped by k-means")
    features = initial[undecided]
    group[undecided] = split_groups([records[i] for i in undecided], "clothes_change", features, seed)
    for g in (0, 1):
      members = features[group[undecided] == g]
      if len(members):
        centroids[g] = members.mean(axis=0)
  return 2 * scenario + group, centroids


def nearest_centroid(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  """The k-means assignment: index of the nearest centroid (Euclidean) of each row."""
  return np.argmin(np.sum(centroids**2, axis=1)[None, :] - 2 * features @ centroids.T, axis=1)


def cluster_domains(features: np.ndarray, domain: np.ndarray, capacity: int, eps: float, min_samples: int,
                    k1: int, k2: int) -> tuple[np.ndarray, np.ndarray]:
  """(labels [N], cluster_domain [C]): DBSCAN over k-reciprocal Jaccard distances within each domain.

  Cluster ids are consecutive, domain by domain; k1 and k2 shrink for a
  domain with k1 or fewer images.
  """
  labels = np.full(len(domain), -1, np.int32)
  cluster_domain = np.full(capacity, -1, np.int32)
  count = 0
  for d in np.unique(domain[domain >= 0]):
    members = np.flatnonzero(domain == d)
    if len(members) < 2:
      continue
    k = min(k1, len(members) - 1)
    graph = jaccard.k_reciprocal_jaccard(features[members], k1=k, k2=min(k2, k + 1))
    local = dbscan.cluster(graph, eps, min_samples)
    found = int(local.max()) + 1
    if count + found > capacity:
      raise ValueError(f"clustering found more than itkm.max_clusters={capacity} clusters; raise it")
    labels[members] = np.where(local >= 0, local + count, -1)
    cluster_domain[count:count + found] = d
    count += found
  return labels, cluster_domain


def dynamic_text_update(instance_text: np.ndarray, labels: np.ndarray, capacity: int, rho: float, mu: float,
                        update: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """DRU (eq. 9-11): (cluster text [C, D], instance text [N, D]).

  t̄_k = mean of the members' instance texts; t_k = mean over the fraction ρ
  (at least one) of members closest to t̄_k; then every member's
  t_i ← μ t_i + (1 − μ) t_k. Means and results are L2-normalised. With
  update=False (DRU ablated) t_k = t̄_k and instance texts stay.
  """
  dim = instance_text.shape[1]
  clustered = np.flatnonzero(labels >= 0)
  y = labels[clustered]
  t = instance_text[clustered]
  sizes = np.bincount(y, minlength=capacity)
  mean = l2_normalize(_segment_mean(t, y, sizes, capacity))
  cluster_text = np.zeros((capacity, dim), np.float32)
  if not update:
    cluster_text[sizes > 0] = mean[sizes > 0]
    return cluster_text, instance_text
  similarity = np.sum(t * mean[y], axis=1)
  order = np.lexsort((-similarity, y))  # by cluster, most similar first
  rank = np.empty(len(y), np.int64)
  starts = np.concatenate([[0], np.cumsum(sizes)])[:-1]
  rank[order] = np.arange(len(y)) - starts[y[order]]
  kept = rank < np.maximum(np.ceil(rho * sizes[y]), 1)
  kept_sizes = np.bincount(y[kept], minlength=capacity)
  cluster_text = l2_normalize(_segment_mean(t[kept], y[kept], kept_sizes, capacity)).astype(np.float32)
  updated = instance_text.copy()
  updated[clustered] = l2_normalize(mu * t + (1 - mu) * cluster_text[y])
  return cluster_text, updated


def _segment_mean(values: np.ndarray, segments: np.ndarray, sizes: np.ndarray, capacity: int) -> np.ndarray:
  sums = np.zeros((capacity, values.shape[1]), np.float64)
  np.add.at(sums, segments, values)
  return sums / np.maximum(sizes, 1)[:, None]


def match_domains(memory: np.ndarray, cluster_text: np.ndarray, cluster_domain: np.ndarray, mode: str,
                  rng: np.random.Generator, p: float) -> np.ndarray:
  """partner [C]: each cluster's matched cluster of the other group of its scenario, -1 for none.

  mode 'chm': the image-centroid matching's pairs that the text-centroid
  matching agrees with, plus each other one with probability p; 'image': all
  image-centroid pairs (PGM); 'none': no pairs. A cluster matched twice (the
  second pass) keeps its most similar partner.
  """
  partner = np.full(len(cluster_domain), -1, np.int32)
  if mode == "none":
    return partner
  for d in np.unique(cluster_domain[(cluster_domain >= 0) & (cluster_domain % 2 == 0)]):
    a, b = np.flatnonzero(cluster_domain == d), np.flatnonzero(cluster_domain == d + 1)
    if not len(a) or not len(b):
      continue
    similarity = memory[a] @ memory[b].T
    pairs = matching.match_clusters(similarity)
    if mode == "chm":
      pairs = matching.agreeing_pairs(pairs, matching.match_clusters(cluster_text[a] @ cluster_text[b].T), rng, p)
    pairs = pairs[np.argsort(similarity[pairs[:, 0], pairs[:, 1]], kind="stable")]  # the most similar assigned last
    partner[a[pairs[:, 0]]] = b[pairs[:, 1]]
    partner[b[pairs[:, 1]]] = a[pairs[:, 0]]
  return partner


@functools.partial(jax.jit, static_argnames="k")
def _top_k_other(queries: jax.Array, bank: jax.Array, query_domain: jax.Array, domain: jax.Array,
                 k: int) -> jax.Array:
  """Indices [B, k] of the k most similar bank rows of the other group, -1 where there are fewer."""
  scores = jnp.where(domain[None, :] == (query_domain ^ 1)[:, None], queries @ bank.T, -jnp.inf)
  values, indices = jax.lax.top_k(scores, k)
  return jnp.where(jnp.isfinite(values), indices, -1)


def ihm_positives(image: np.ndarray, text: np.ndarray, domain: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
  """[N, k] IHM positives: the images of the other group among both the k nearest by image feature and the k
  nearest by instance text feature (in the image order), -1 padded. On the device, `chunk` rows at a time."""
  n = len(domain)
  k = min(k, n)
  out = np.full((n, k), -1, np.int32)
  for start in range(0, n, chunk):
    rows = slice(start, min(start + chunk, n))
    by_image = np.asarray(_top_k_other(image[rows], image, domain[rows], domain, k))
    by_text = np.asarray(_top_k_other(text[rows], text, domain[rows], domain, k))
    both = (by_image[:, :, None] == by_text[:, None, :]).any(axis=2) & (by_image >= 0) & (domain[rows, None] >= 0)
    out[rows] = np.where(both, by_image, -1)
  return out


def label_scores(labels: np.ndarray, pids: np.ndarray, domain: np.ndarray, partner: np.ndarray,
                 scenario_names) -> dict[str, float]:
  """Pseudo-label quality per scenario: clusters, outliers and pairwise precision / recall / F-score of
  the homogeneous labels, and F-score of the labels with matched clusters merged ('matched_fscore')."""
  merged = np.where(labels >= 0, np.minimum(labels, np.where(partner[labels] >= 0, partner[labels], labels)), -1)
  out = {}
  for s, name in enumerate(scenario_names):
    rows = np.flatnonzero(domain // 2 == s)
    if not len(rows):
      continue
    scores = quality.pairwise_scores(labels[rows], pids[rows])
    out.update({f"{name}/{key}": float(value) for key, value in scores.items()})
    out[f"{name}/matched_fscore"] = float(quality.pairwise_scores(merged[rows], pids[rows])["fscore"])
  return out
