"""python -m jreid.bench pseudo_labels: nearest-neighbour precision by brute force, and a run on the tiny set."""

import argparse

import numpy as np

from jreid.bench import pseudo_labels


def test_nearest_neighbour_precision_by_brute_force():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(40, 8))
  features /= np.linalg.norm(features, axis=1, keepdims=True)
  domain, pids = rng.integers(0, 3, 40), rng.integers(0, 6, 40)
  hits, counted = 0, 0
  for i in range(40):
    others = [j for j in range(40) if j != i and domain[j] == domain[i]]
    if others:
      best = max(others, key=lambda j: features[i] @ features[j])
      hits, counted = hits + (pids[best] == pids[i]), counted + 1
  neighbour = pseudo_labels.nearest_neighbours(features, domain)
  assert pseudo_labels.nearest_neighbour_precision(neighbour, pids) == hits / counted


def test_run_prints_one_row_per_setting(tiny, capsys):
  pseudo_labels.run(argparse.Namespace(preset="smoke", size="", init="", k1="5,10", eps="0.5", min_samples="2"))
  out = capsys.readouterr().out
  assert "nearest-neighbour precision" in out
  rows = [line for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
  assert [row.split("|")[1].strip() for row in rows] == ["5", "10"]
  groups = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "/" in line][1:]
  assert groups and set(groups) <= {f"{s}/{g}" for s in ("visible_infrared", "clothes_change", "cross_resolution")
                                    for g in (0, 1)}
