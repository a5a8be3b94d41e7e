"""Evaluates a trained method on every task a config lists: metrics, chance levels, pictures, summary."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
from ml_collections import ConfigDict

from data_pipelines.records import EvalTask, ReIDData
from jreid.eval.chance import chance_metrics
from jreid.eval.evaluate import evaluate
from jreid.eval.visualize import save_ranked_results
from jreid.progress import write

REPORTED = ("mAP", "rank1", "rank5", "rank10", "mINP")


def missing_modality_tasks(tasks: dict[str, EvalTask]) -> dict[str, tuple[str, EvalTask]]:
  """{name: (task it derives from, task)}: the combined-query tasks with one part of the query taken away.

  text+sketch queries as text only and as sketch only; image+instruction and
  image+template queries as the image alone. Same galleries and protocols.
  """
  variants = {}
  for name, task in tasks.items():
    if task.query_kind == "text+sketch":
      no_text = [dataclasses.replace(q, captions=()) for q in task.query]
      variants[f"{name} / no text"] = (name, dataclasses.replace(task, query_kind="sketch", query=tuple(no_text)))
      variants[f"{name} / no sketch"] = (name, dataclasses.replace(task, query_kind="text"))
    elif task.query_kind in ("image+instruction", "image+template"):
      bare = tuple(dataclasses.replace(q, instruction="", template="") for q in task.query)
      variants[f"{name} / no instruction"] = (name, dataclasses.replace(task, query_kind="image", query=bare))
  return variants


def task_names(config, data) -> tuple[str, ...]:
  """config.eval.tasks, or the dataset's own tasks when it is empty; a name the dataset lacks is a ValueError."""
  names = tuple(config.eval.tasks) or tuple(data.tasks)
  for name in names:
    if name not in data.tasks:
      raise ValueError(f"config.eval.tasks names {name!r}, but {data.name} has tasks {sorted(data.tasks)}")
  return names


def evaluate_tasks(config: ConfigDict, method, state, data: ReIDData, workdir: str | None = None,
                   reported: str = "") -> dict[str, dict[str, Any]]:
  """{task: metrics} for the config's tasks; with `workdir`, writes one picture per task there and
  results.json / results.md, headed by `reported` (which step the state is).

  Image-only methods answer image+instruction queries with the image alone
  (the modality-missing fallback); tasks whose queries the method cannot
  encode at all (e.g. text without a text tower) are reported as skipped.
  With config.eval.missing_modalities the combined-query tasks are also
  evaluated with a part of the query missing (`missing_modality_tasks`);
  those rows carry 'variant_of' and stay out of the mean.
  """
  results = {}
  gallery_cache = {}
  chosen = {name: data.tasks[name] for name in task_names(config, data)}
  todo = [(name, None, task) for name, task in chosen.items()]
  if config.eval.get("missing_modalities", False):
    todo += [(name, parent, task) for name, (parent, task) in missing_modality_tasks(chosen).items()]
  for number, (name, parent, task) in enumerate(todo, 1):
    if task.query_kind not in method.query_kinds:
      results[name] = {"protocol": task.protocol, "skipped": f"{config.method} cannot encode {task.query_kind} queries"}
      continue
    write(f"evaluating {name} ({number}/{len(todo)}): {len(task.query)} {task.query_kind} queries, "
          f"{len(task.gallery)} gallery images")
    gallery_key = tuple(task.gallery)  # whole records: a method may encode a gallery item's instruction too
    if gallery_key not in gallery_cache:
      gallery_cache[gallery_key] = method.encode_records(state, task.gallery, "image", config.eval.batch_size)
    gallery = gallery_cache[gallery_key]
    query = method.encode_records(state, task.query, task.query_kind, config.eval.batch_size)
    metrics = evaluate(query, gallery, task.query, task.gallery, task.protocol, return_topk=config.eval.picture_topk)
    chance = chance_metrics(task.query, task.gallery, task.protocol)
    results[name] = {
        "protocol": task.protocol, "queries": metrics["num_queries_evaluated"], "gallery": len(task.gallery),
        **{k: metrics[k] for k in REPORTED}, **{f"chance_{k}": chance[k] for k in ("mAP", "rank1")},
        **({"variant_of": parent} if parent else {}),
    }
    if workdir is not None:
      results[name]["picture"] = _save_picture(config, workdir, name, task, metrics)
  if workdir is not None:
    _write(results, workdir, reported)
  return results


def _save_picture(config: ConfigDict, workdir: str, name: str, task: EvalTask, metrics: dict[str, Any]) -> str:
  """WORKDIR/ranked/<task>.png of config.eval.picture_queries queries spread over the task's."""
  picture_dir = os.path.join(workdir, "ranked")
  os.makedirs(picture_dir, exist_ok=True)
  picture = os.path.join(picture_dir, f"{name.replace('+', '_').replace(' / ', '-').replace(' ', '_')}.png")
  rows = np.linspace(0, len(task.query) - 1, min(config.eval.picture_queries, len(task.query))).astype(int)
  save_ranked_results(picture, task, metrics["topk_indices"], metrics["topk_matches"], query_indices=rows)
  return picture


def summary_table(results: dict[str, dict[str, Any]]) -> str:
  """Markdown: per-task metrics (in %) with the chance levels and the mean over tasks; then, if any, the
  tasks evaluated with a part of the query missing."""
  main = {k: v for k, v in results.items() if "variant_of" not in v}
  variants = {k: v for k, v in results.items() if "variant_of" in v}
  text = _table(main, with_mean=True)
  if variants:
    text += "\n\nWith a part of the query missing (same galleries):\n\n" + _table(variants, with_mean=False)
  return text


def _table(results: dict[str, dict[str, Any]], with_mean: bool) -> str:
  header = "| task | protocol | queries | mAP | rank-1 | rank-5 | rank-10 | mINP | chance mAP | chance rank-1 |"
  lines = [header, "|" + "---|" * 10]
  for name, r in results.items():
    if "skipped" in r:
      lines.append(f"| {name} | {r['protocol']} | skipped: {r['skipped']} |" + " |" * 7)
      continue
    values = " | ".join(f"{100 * r[k]:.1f}" for k in (*REPORTED, "chance_mAP", "chance_rank1"))
    lines.append(f"| {name} | {r['protocol']} | {r['queries']} | {values} |")
  scored = [r for r in results.values() if "mAP" in r]
  if with_mean and scored:
    means = " | ".join(f"{100 * np.mean([r[k] for r in scored]):.1f}"
                       for k in (*REPORTED, "chance_mAP", "chance_rank1"))
    lines.append(f"| **mean** | | | {means} |")
  return "\n".join(lines)


def _write(results: dict[str, dict[str, Any]], workdir: str, reported: str) -> None:
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump({"reported": reported, "tasks": results}, f, indent=2)
  heading = f"Evaluated at {reported}.\n\n" if reported else ""
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(heading + summary_table(results) + "\n")


def print_summary(results: dict[str, dict[str, Any]], workdir: str, elapsed: float, reported: str) -> None:
  """The table, which step it reports, and where everything went."""
  print()
  print(f"Evaluated at {reported}:")
  print()
  print(summary_table(results))
  print()
  print(f"finished in {elapsed / 60:.1f} min")
  print(f"  checkpoints : {os.path.join(workdir, 'checkpoints')}")
  print(f"  tensorboard : {os.path.join(workdir, 'tensorboard')}  (tensorboard --logdir {workdir}; viewer: pip install 'jreid[tensorboard]')")
  print(f"  results     : {os.path.join(workdir, 'results.md')}, results.json")
  print(f"  ranked lists: {os.path.join(workdir, 'ranked')}/<task>.png")
