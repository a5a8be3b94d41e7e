"""Pseudo-label quality of a start: how well ITKM's first clustering could do, over clustering settings.

Builds the ITKM method of configs/itkm.py (--preset, --init: a converted CLIP
directory, as --config.model.init) on its training images, groups them as
ITKM's first round does (modality / resolution; k-means for clothes change),
extracts the start's features, and prints:
- the nearest-neighbour precision: the share of images whose most similar
  other image of the same group is the same person, over all images and per
  group (with the share whose neighbour also wears the same outfit);
- for each (k1, eps, min_samples) of the grid (k2 = max(1, k1 // 3)): the
  pairwise precision, recall and F-score of the DBSCAN labels against the true
  identities, with the counts of clusters and outliers.
A start whose best F-score is low cannot be rescued by the clustering
settings (benchmarks/ITKM.md).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import numpy as np

from configs import itkm as itkm_config
from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.cluster import quality
from jreid.methods.itkm import rounds
from jreid.methods.itkm.scenarios import SCENARIOS


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--preset", choices=itkm_config.PRESETS, default="cpu", help="preset of configs/itkm.py.")
  parser.add_argument("--size", default="", help="the synthetic set (data.size; '': the preset's).")
  parser.add_argument("--init", default="", help="the converted CLIP directory to start from ('' : random).")
  parser.add_argument("--k1", default="5,10,20", help="comma-separated k1 values.")
  parser.add_argument("--eps", default="0.3,0.45,0.6,0.75", help="comma-separated DBSCAN eps values.")
  parser.add_argument("--min-samples", default="2,4", help="comma-separated DBSCAN min_samples values.")


def start_features(preset: str, init: str, size: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(features [N, D], group-of-scenario domain [N], true identity [N], outfit [N]) of ITKM's training images
  (of the synthetic set `size`, where given)."""
  config = itkm_config.get_config(preset)
  config.model.init = init
  config.data.size = size or config.data.size
  data = load_data(config.data, config.seed)
  method = methods.build(config, 0, training_records(data, config.data.train_modalities))
  params, _ = method.init(jax.random.key(config.seed),
                          {"image": np.zeros((2, *method.vision.image_size, 3), np.uint8)})
  batch = config.eval.batch_size
  initial = method.extract(params["image"], method.records, np.zeros(len(method.records), np.int32),
                           method.scenario, batch)
  domain, _ = rounds.assign_domains(method.records, method.scenario, method.group, initial,
                                    method.clothes_change_index, config.seed)
  features = method.extract(params["image"], method.records, domain % 2, domain // 2, batch)
  return (features, domain, np.array([r.pid for r in method.records]),
          np.array([r.clothes_id for r in method.records]))


def nearest_neighbours(features: np.ndarray, domain: np.ndarray) -> np.ndarray:
  """Index of each image's most similar other image (cosine) of the same domain; -1 where it has none."""
  similarity = features @ features.T
  np.fill_diagonal(similarity, -np.inf)
  similarity[domain[:, None] != domain[None, :]] = -np.inf
  return np.where(np.isfinite(similarity.max(axis=1)), np.argmax(similarity, axis=1), -1)


def nearest_neighbour_precision(neighbour: np.ndarray, pids: np.ndarray) -> float:
  """Share of the images with a neighbour (`nearest_neighbours`) whose neighbour has the same identity."""
  has = neighbour >= 0
  return float(np.mean(pids[neighbour[has]] == pids[has]))


def domain_name(domain: int) -> str:
  scenario, group = divmod(int(domain), 2)
  return f"{SCENARIOS[scenario]}/{group}"


def run(args: argparse.Namespace) -> None:
  features, domain, pids, outfits = start_features(args.preset, args.init, args.size)
  neighbour = nearest_neighbours(features, domain)
  print(f"\nStart {args.init or '(random)'}: {len(pids)} images of {len(np.unique(pids))} identities in "
        f"{len(np.unique(domain))} groups; nearest-neighbour precision "
        f"{nearest_neighbour_precision(neighbour, pids):.3f}\n")
  print("| group (scenario/group) | images | identities | NN same person | NN same outfit |")
  print("|---|---:|---:|---:|---:|")
  for d in np.unique(domain):
    rows = np.flatnonzero((domain == d) & (neighbour >= 0))
    same = pids[neighbour[rows]] == pids[rows]
    print(f"| {domain_name(d)} | {np.sum(domain == d)} | {len(np.unique(pids[domain == d]))} | {np.mean(same):.3f} | "
          f"{np.mean(same & (outfits[neighbour[rows]] == outfits[rows])):.3f} |")
  print()
  print("| k1 | eps | min_samples | F-score | precision | recall | clusters | outliers |")
  print("|---:|---:|---:|---:|---:|---:|---:|---:|")
  grid = itertools.product([int(k) for k in args.k1.split(",")], [float(e) for e in args.eps.split(",")],
                           [int(m) for m in args.min_samples.split(",")])
  for k1, eps, min_samples in grid:
    labels, _ = rounds.cluster_domains(features, domain, len(pids), eps, min_samples, k1, max(1, k1 // 3))
    s = quality.pairwise_scores(labels, pids)
    print(f"| {k1} | {eps:g} | {min_samples} | {s['fscore']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | "
          f"{s['clusters']} | {s['outliers']} |")
