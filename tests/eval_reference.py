"""Plain NumPy evaluation, written apart from jreid.eval to check it.

A per-query loop in the style of torchreid / fast-reid: sort the gallery,
drop the items the protocol removes, accumulate matches. Ties: stable order by
gallery index among equal scores. Also re-ranking (the published loop of
Zhong et al. 2017), average query expansion and the SYSU-MM01 gallery draw.
"""

from __future__ import annotations

import numpy as np

from data_pipelines.records import Record

SYSU_CAMIDS = {"sysu_all": {0, 1, 3, 4}, "sysu_indoor": {0, 1}}


def scores(query, gallery, metric, dtype=np.float64):
  """Higher is closer: cosine similarity or minus squared distance."""
  q = np.asarray(query, dtype)
  g = np.asarray(gallery, dtype)
  if metric == "cosine":
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    return q @ g.T
  sq_q = (q * q).sum(1)
  sq_g = (g * g).sum(1)
  return 2 * q @ g.T - sq_q[:, None] - sq_g[None, :]


class GalleryColumns:
  """The gallery's labels as arrays (built once per ranking)."""

  def __init__(self, records):
    self.pid = np.array([r.pid for r in records])
    self.camid = np.array([r.camid for r in records])
    self.clothes_id = np.array([r.clothes_id for r in records])
    self.modality = np.array([r.modality for r in records])
    self.path = np.array([r.path for r in records])


def kept(query, gallery, protocol):
  """Boolean per gallery item: is it in this query's ranking."""
  same = gallery.pid == query.pid
  keep = np.ones(len(gallery.pid), bool)
  if query.source:
    keep &= gallery.path != query.source
  if protocol in ("standard", "general", "cross_resolution"):
    keep &= ~(same & (gallery.camid == query.camid))
  elif protocol == "cc":
    keep &= ~(same & ((gallery.camid == query.camid)
                      | (gallery.clothes_id == query.clothes_id)))
  elif protocol in SYSU_CAMIDS:
    keep &= (gallery.modality == "rgb") & np.isin(
        gallery.camid, sorted(SYSU_CAMIDS[protocol]))
    if query.camid == 2:
      keep &= gallery.camid != 1
  elif protocol == "v2i":
    keep &= gallery.modality == "ir"
  elif protocol == "i2v":
    keep &= gallery.modality == "rgb"
  return keep


def metrics_from_scores(score_matrix, query_records, gallery_records,
                        protocol, ranks=(1, 5, 10, 20), topk=10):
  """Metrics of one score matrix; per-query lists of the top-k."""
  aps, inps, firsts = [], [], []
  top_index = np.full((len(query_records), topk), -1)
  top_match = np.zeros((len(query_records), topk), bool)
  gallery = GalleryColumns(gallery_records)
  for i, query in enumerate(query_records):
    order = np.argsort(-score_matrix[i], kind="stable")
    order = order[kept(query, gallery, protocol)[order]]
    matches = (gallery.pid[order] == query.pid) & (query.pid >= 0)
    if protocol == "target_clothes":
      matches &= gallery.clothes_id[order] == query.target_clothes_id
    top_index[i, :min(topk, len(order))] = order[:topk]
    top_match[i, :min(topk, len(order))] = matches[:topk]
    if not matches.any():
      continue
    hits = np.cumsum(matches)
    positions = np.flatnonzero(matches)
    aps.append(np.mean(hits[positions] / (positions + 1.0)))
    inps.append(matches.sum() / (positions[-1] + 1.0))
    firsts.append(positions[0])
  firsts = np.array(firsts)
  out = {"mAP": np.mean(aps), "mINP": np.mean(inps),
         "num_queries_evaluated": len(aps)}
  for k in ranks:
    out[f"rank{k}"] = np.mean(firsts < k)
  return out, top_index, top_match


def sysu_trials(gallery_records, protocol, num_trials=10, seed=0):
  """Gallery index lists: one random visible item per (pid, camid)."""
  groups = {}
  for index, item in enumerate(gallery_records):
    if item.modality == "rgb" and item.camid in SYSU_CAMIDS[protocol]:
      groups.setdefault((item.pid, item.camid), []).append(index)
  keys = sorted(groups)
  if all(len(groups[key]) == 1 for key in keys):
    return [sorted(groups[key][0] for key in keys)]
  trials = []
  for trial in range(num_trials):
    u = np.random.default_rng((seed, trial)).random(len(keys))
    trials.append(sorted(groups[key][int(u[j] * len(groups[key]))]
                         for j, key in enumerate(keys)))
  return trials


def evaluate(query_features, gallery_features, query_records,
             gallery_records, protocol, metric="cosine", ranks=(1, 5, 10, 20),
             topk=10, num_trials=10, seed=0, dtype=np.float64):
  """Metrics averaged over gallery trials; top-k lists of the first trial."""
  if protocol in SYSU_CAMIDS:
    subsets = sysu_trials(gallery_records, protocol, num_trials, seed)
  else:
    subsets = [list(range(len(gallery_records)))]
  results = []
  for subset in subsets:
    score_matrix = scores(query_features,
                          np.asarray(gallery_features)[subset], metric, dtype)
    out, index, match = metrics_from_scores(
        score_matrix, query_records, [gallery_records[j] for j in subset],
        protocol, ranks, topk)
    index = np.where(index >= 0, np.array(subset)[np.maximum(index, 0)], -1)
    results.append((out, index, match))
  merged = {key: np.mean([r[0][key] for r in results]) for key in results[0][0]}
  return merged, results[0][1], results[0][2]


def average_query_expansion(query, gallery, k, metric):
  """Each query averaged with its k best gallery items."""
  s = scores(query, gallery, metric)
  q = np.asarray(query, np.float64)
  g = np.asarray(gallery, np.float64)
  if metric == "cosine":
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
  out = []
  for i in range(len(q)):
    best = np.argsort(-s[i], kind="stable")[:k]
    out.append((q[i] + g[best].sum(0)) / (k + 1))
  out = np.array(out)
  if metric == "cosine":
    out = out / np.linalg.norm(out, axis=1, keepdims=True)
  return out


def k_reciprocal_vectors(dist, rank, k1, k2):
  """The published k-reciprocal encoding [N, N] (each row's weights sum to one) from base distances and the
  ranking of every row, averaged over each row's k2 nearest (local query expansion)."""
  n = len(dist)
  half = int(np.around(k1 / 2.0))

  def reciprocal(i, k):
    forward = rank[i, :k + 1]
    backward = rank[forward, :k + 1]
    return forward[np.where(backward == i)[0]]

  v = np.zeros((n, n))
  for i in range(n):
    base = reciprocal(i, k1)
    expansion = base
    for candidate in base:
      candidate_set = reciprocal(candidate, half)
      if len(np.intersect1d(candidate_set, base)) > 2.0 / 3 * len(
          candidate_set):
        expansion = np.append(expansion, candidate_set)
    expansion = np.unique(expansion)
    weight = np.exp(-dist[i, expansion])
    v[i, expansion] = weight / weight.sum()
  if k2 != 1:
    v = np.array([v[rank[i, :k2]].mean(0) for i in range(n)])
  return v


def k_reciprocal_distances(query, gallery, k1=20, k2=6, lambda_value=0.3,
                           metric="cosine"):
  """The published re-ranking loop (squared Euclidean base distance)."""
  x = np.concatenate([query, gallery]).astype(np.float64)
  if metric == "cosine":
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
  n, num_query = len(x), len(query)
  dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
  dist = dist / dist.max(axis=1, keepdims=True)
  v = k_reciprocal_vectors(dist, np.argsort(dist, axis=1, kind="stable"), k1, k2)
  inverted = [np.where(v[:, j] != 0)[0] for j in range(n)]
  jaccard = np.zeros((num_query, n))
  for i in range(num_query):
    shared = np.zeros(n)
    for j in np.where(v[i] != 0)[0]:
      shared[inverted[j]] += np.minimum(v[i, j], v[inverted[j], j])
    jaccard[i] = 1 - shared / (2 - shared)
  final = jaccard * (1 - lambda_value) + dist[:num_query] * lambda_value
  return final[:, num_query:]


# Random evaluation cases (records and features) for the tests.

def tied_features(rng, n, pool=12, dim=32, nonzeros=16):
  """Rows drawn from a few ternary vectors of norm 4: exact ties, exact math."""
  vectors = np.zeros((pool, dim), np.float32)
  for row in vectors:
    row[rng.choice(dim, nonzeros, replace=False)] = rng.choice([-1, 1],
                                                               nonzeros)
  return vectors[rng.integers(0, pool, n)]


def random_case(rng, protocol, num_query=40, num_gallery=160, num_ids=12):
  """Query and gallery records under `protocol`, with queries of no match."""
  gallery = []
  for j in range(num_gallery):
    pid = int(rng.integers(-1, num_ids))
    if protocol in SYSU_CAMIDS:
      camid = int(rng.choice([0, 1, 3, 4, 2, 5], p=[.2, .2, .2, .2, .1, .1]))
      modality = "ir" if camid in (2, 5) else "rgb"
    else:
      camid = int(rng.integers(0, 4))
      modality = str(rng.choice(["rgb", "ir"]))
    gallery.append(Record(f"g{j}.png", pid, camid,
                          clothes_id=int(rng.integers(0, 3)),
                          modality=modality))
  query = []
  for i in range(num_query):
    pid = int(rng.integers(0, num_ids + 3))  # ids >= num_ids: no match
    camid = int(rng.integers(0, 4))
    modality = {"i2v": "ir", "v2i": "rgb"}.get(protocol, "rgb")
    if protocol in SYSU_CAMIDS:
      camid, modality = int(rng.choice([2, 5])), "ir"
    source = ""
    same = [g for g in gallery if g.pid == pid]
    if protocol in ("sketch", "text+sketch", "cross_resolution") and same:
      source = same[int(rng.integers(0, len(same)))].path
    query.append(Record("" if protocol == "text" else f"q{i}.png", pid,
                        camid, clothes_id=int(rng.integers(0, 3)),
                        modality=modality, source=source,
                        target_clothes_id=int(rng.integers(0, 3))))
  return query, gallery
