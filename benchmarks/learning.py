"""Learning benchmark: many jreid runs and the PyTorch peer's side by side on one GPU, one table.

  python benchmarks/learning.py PLAN --out DIR --peer PEER_DIR [--jobs N] [--runs REGEX]

PLAN names a list of runs below (`PLANS`). Every run is `python -m jreid.main` with config overrides, or
the peer (`PEER_DIR/peer_reid.py`, a copy of shared/bench/) on the synthetic set written in the Market
layout by `PEER_DIR/export_market.py`. The synthetic sets of the plan's seeds are generated first, then
the runs go N at a time (each process takes GPU memory as it needs it). Written to DIR: one folder per
run (log, results, TensorBoard), `summary.json` (each run's mAP per task, chance, steps, wall time,
and a loss / gradient-norm curve read from its TensorBoard events) and `summary.md` (the table), figures in %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKET_TASKS = ("traditional", "cross_resolution", "visible_infrared", "sketch", "clothes_changing")


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run: a jreid config with overrides, or the peer with its arguments (`peer` set)."""

  name: str
  seed: int
  config: str = "configs/image_reid.py"
  overrides: tuple[str, ...] = ()
  peer: tuple[str, ...] | None = None  # peer_reid.py arguments; the data folder is added
  modalities: str = "rgb"  # the peer's training modalities (its exported folder)
  env: tuple[tuple[str, str], ...] = ()  # extra environment variables of the run


PHOTOS = ("data.train_modalities=('rgb',)",)
STEPS_3K = ("train.num_steps=3000", "train.checkpoint_every=1000")
NO_CLIP = ("optim.grad_clip=0.0",)
WIDE_STEM = "model.vision.stem_width=64"  # the best tower of the `gap` plan (benchmarks/LEARNING.md)
ONE_BLOCK = "model.vision.stem_blocks=1"  # the image tower's default; the unified `cpu` preset's stem has none


def _tower(stem: str, blocks: int = 0, pool: str = "token") -> tuple[str, ...]:
  return (f"model.vision.stem={stem}", f"model.vision.stem_blocks={blocks}", f"model.vision.pool={pool}")


def _towers() -> list[Run]:
  """Which from-scratch tower: jreid's variants (no gradient clipping) and the peers, photos only, 3,000 steps;
  and the unified model with two of them, 1,500 steps (issue 17)."""
  variants = {
      "patch": _tower("patch"), "patch-mean": _tower("patch", pool="mean"),
      "conv": _tower("conv"), "conv-mean": _tower("conv", pool="mean"),
      "conv1": _tower("conv", 1), "conv1-mean": _tower("conv", 1, "mean"), "conv2-mean": _tower("conv", 2, "mean"),
  }
  base = PHOTOS + STEPS_3K + NO_CLIP
  runs = [Run(f"jreid-{k}", 0, overrides=base + v) for k, v in variants.items()]
  runs += [Run("jreid-conv1-mean", 1, overrides=base + variants["conv1-mean"])]
  runs += [Run("jreid-conv1-mean-allmod", 0, overrides=STEPS_3K + NO_CLIP + variants["conv1-mean"])]
  peer = ("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000")
  runs += [Run("peer-resnet18", s, peer=peer + ("--model", "resnet18")) for s in (0, 1)]
  runs += [Run("peer-vit", 0, peer=peer + ("--model", "vit")),
           Run("peer-vit-conv", 0, peer=peer + ("--model", "vit", "--stem", "conv")),
           Run("peer-resnet18-allmod", 0, peer=peer + ("--model", "resnet18"), modalities="rgb,ir,sketch")]
  unified = ("train.num_steps=1500",) + NO_CLIP
  runs += [Run("unified-conv1-mean", s, "configs/unified.py", unified + variants["conv1-mean"]) for s in (0, 1)]
  runs += [Run("unified-patch", s, "configs/unified.py", unified + variants["patch"]) for s in (0, 1)]
  return runs


def _recipe() -> list[Run]:
  """The default tower and recipe (conv stem with one residual block per stage, gradient clipping at 1.0)
  against the same tower without clipping and the ResNet-18 peer, photos only, 3,000 steps; and the unified
  model, 1,000 steps (issue 17)."""
  runs = [Run("jreid-conv1-clip", s, overrides=PHOTOS + STEPS_3K) for s in range(4)]
  runs += [Run("jreid-conv1-noclip", s, overrides=PHOTOS + STEPS_3K + NO_CLIP) for s in (1, 2)]
  runs += [Run("peer-resnet18", s, peer=("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000",
                                         "--model", "resnet18")) for s in range(4)]
  runs += [Run("unified-conv1-clip", s, "configs/unified.py", ("eval.missing_modalities=False", ONE_BLOCK))
           for s in (0, 1)]
  return runs


def _gap() -> list[Run]:
  """Closing the gap to the ResNet-18 peer (photos only, 3,000 steps, the default recipe): a wider or deeper
  conv stem, hybrids whose stem is four ResNet-like stages (stride 16) feeding the transformer, the ViT
  recipe's weight decay (DeiT: 0.05) and a longer warm-up (issue 17)."""
  base = PHOTOS + STEPS_3K
  hybrid = ("model.vision.patch_size=16", "model.vision.stem_blocks=2")
  runs = [Run("jreid-default", s, overrides=base) for s in (0, 1)]
  runs += [Run("jreid-wd0.05", 0, overrides=base + ("optim.weight_decay=0.05",)),
           Run("jreid-warmup300", 0, overrides=base + ("optim.warmup_steps=300",)),
           Run("jreid-w64", 0, overrides=base + (WIDE_STEM,)),
           Run("jreid-b2", 0, overrides=base + ("model.vision.stem_blocks=2",)),
           Run("jreid-hybrid16-w32", 0, overrides=base + hybrid),
           Run("jreid-hybrid16-w64", 0, overrides=base + hybrid + (WIDE_STEM,))]
  peer = ("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000")
  runs += [Run("peer-resnet18", s, peer=peer + ("--model", "resnet18")) for s in (0, 1)]
  runs += [Run("peer-vit-conv", 0, peer=peer + ("--model", "vit", "--stem", "conv"))]
  return runs


def _close() -> list[Run]:
  """The width-64 stem at four seeds beside the ResNet-18 peer in one call, and the gap plan's two best recipe
  changes (DeiT weight decay, a 300-step warm-up) on top of it, at widths 64 and 48 (photos only, 3,000
  steps; issue 17)."""
  base = PHOTOS + STEPS_3K
  tuned = ("optim.weight_decay=0.05", "optim.warmup_steps=300")
  runs = [Run("jreid-w64", s, overrides=base + (WIDE_STEM,)) for s in range(4)]
  runs += [Run("jreid-w64-tuned", s, overrides=base + (WIDE_STEM,) + tuned) for s in (0, 1)]
  runs += [Run("jreid-w48-tuned", 0, overrides=base + ("model.vision.stem_width=48",) + tuned)]
  peer = ("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000", "--model", "resnet18")
  runs += [Run("peer-resnet18", s, peer=peer) for s in range(3)]
  return runs


def _final() -> list[Run]:
  """The tuned recipe (DeiT weight decay, 300-step warm-up) beside four ResNet-18 seeds in one call, in both of
  issue 17's settings (3,000 steps): photos only, with the width-64 stem (seeds 2 and 3 complete the close
  plan's 0 and 1) and the default width-32 stem that fits the CPU budget; and photos, infrared and sketches,
  with the width-64 stem."""
  tuned = STEPS_3K + ("optim.weight_decay=0.05", "optim.warmup_steps=300")
  peer = ("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000", "--model", "resnet18")
  runs = [Run("jreid-w64-tuned", s, overrides=PHOTOS + tuned + (WIDE_STEM,)) for s in (2, 3)]
  runs += [Run("jreid-w32-tuned", s, overrides=PHOTOS + tuned) for s in range(4)]
  runs += [Run("jreid-w64-tuned-allmod", s, overrides=tuned + (WIDE_STEM,)) for s in range(4)]
  runs += [Run("peer-resnet18", s, peer=peer) for s in range(4)]
  runs += [Run("peer-resnet18-allmod", s, peer=peer, modalities="rgb,ir,sketch") for s in range(4)]
  return runs


def _modality() -> list[Run]:
  """Modality-aware training for the cross-modal tasks (issue 17): on photos, infrared and sketches with the
  tuned width-64 tower, every identity's K images split evenly over the three modalities (so that every
  batch holds cross-modal positives), with P = 8 or 5, with or without channel exchange (a photo becomes one
  of its channels, repeated, as an infrared camera would see it); beside the plain run and the peer."""
  tuned = STEPS_3K + ("optim.weight_decay=0.05", "optim.warmup_steps=300", WIDE_STEM)
  balanced = ("data.balance_modalities=('rgb','ir','sketch')", "data.num_instances=6")
  exchange = ("data.augment.channel_exchange=0.3",)
  variants = {"plain": (), "bal-p8": balanced, "bal-p5": balanced + ("data.num_ids=5",),
              "bal-p8-cx": balanced + exchange, "cx": exchange}
  runs = [Run(f"jreid-w64-{k}", s, overrides=tuned + v) for k, v in variants.items() for s in (0, 1)]
  peer = ("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000", "--model", "resnet18")
  runs += [Run("peer-resnet18-allmod", s, peer=peer, modalities="rgb,ir,sketch") for s in (0, 1)]
  return runs


def _stable() -> list[Run]:
  """The batch-hard triplet's mined distances taken from feature differences (jreid/losses/triplet.py,
  row_distance), re-measured where the modality plan saw gradient norms in the thousands and a run that never
  took off: its plain, channel-exchange, balanced P = 5 and balanced + exchange variants, and the width-32
  photo default at four seeds, beside the ResNet-18 in both settings (issue 17)."""
  tuned = STEPS_3K + ("optim.weight_decay=0.05", "optim.warmup_steps=300")
  balanced = ("data.balance_modalities=('rgb','ir','sketch')", "data.num_instances=6")
  exchange = ("data.augment.channel_exchange=0.3",)
  variants = {"plain": (), "cx": exchange, "bal-p5": balanced + ("data.num_ids=5",), "bal-p8-cx": balanced + exchange}
  runs = [Run(f"jreid-w64-{k}", s, overrides=tuned + (WIDE_STEM,) + v) for k, v in variants.items() for s in (0, 1)]
  runs += [Run("jreid-w32-tuned", s, overrides=PHOTOS + tuned) for s in range(4)]
  peer = ("--size", "96,48", "--P", "8", "--K", "4", "--steps", "3000", "--model", "resnet18")
  runs += [Run("peer-resnet18", s, peer=peer) for s in (0, 1)]
  runs += [Run("peer-resnet18-allmod", s, peer=peer, modalities="rgb,ir,sketch") for s in (0, 1)]
  return runs


def _tables() -> list[Run]:
  """The results tables re-measured with the wide conv stem and the default recipe: the unified, Instruct-ReID
  and UNIReID `cpu` presets at the default job's budget (1,000 steps), seeds 0-3 of the unified model and 0-2
  of the others (issue 17)."""
  steps = ("train.num_steps=1000", "eval.missing_modalities=False", WIDE_STEM, ONE_BLOCK)
  seeds = {"unified": range(4), "instruct": range(3), "unireid": range(3)}
  return [Run(name, s, f"configs/{name}.py", steps) for name in seeds for s in seeds[name]]


def _default() -> list[Run]:
  """What lifts the default job's tasks from chance within its budget: the unified `cpu` preset as shipped
  (1,000 steps, the stem without residual blocks) and single recipe changes, seeds 0 and 1 (issue 17)."""
  base = ("eval.missing_modalities=False",)
  hard = ("data.task_ratios.traditional=0.25", "data.task_ratios.cross_resolution=0.25")
  exchange = ("data.augment.channel_exchange=0.3",)
  variants = {"default": (), "hard": hard, "mixed-p9": ("data.mix_mode=mixed", "data.num_ids=9"),
              "cx": exchange, "hard-cx": hard + exchange,
              "tuned": ("optim.weight_decay=0.05", "optim.warmup_steps=150"),
              "nodyn": ("loss.dynamic=False",), "lr2e-3": ("optim.lr=2e-3",)}
  return [Run(f"unified-{k}", s, "configs/unified.py", base + v) for k, v in variants.items() for s in (0, 1)]


UNIFIED_TASKS = ("traditional", "clothes_changing", "visible_infrared", "text", "clothes_template",
                 "language_instructed", "cross_resolution", "sketch", "text+sketch")


def _diagnose() -> list[Run]:
  """Why multi-task training did not take off (before gradient clipping): the unified model on traditional
  plus one other task, 1,200 steps, with the conv stem and no clipping; and the image tower in full fp32
  matmuls (no TF32). The curves of summary.json hold the answer (issue 17)."""
  base = ("train.num_steps=1200", "eval.missing_modalities=False", ONE_BLOCK) + NO_CLIP
  runs = [Run("unified-all", 0, "configs/unified.py", base)]
  for task in UNIFIED_TASKS:
    tasks = ("traditional",) if task == "traditional" else ("traditional", task)
    runs.append(Run(f"unified-{'+'.join(tasks)}", 0, "configs/unified.py",
                    base + (f"data.tasks={tasks!r}", f"eval.tasks={tasks!r}")))
  runs.append(Run("jreid-conv1-fp32", 0, overrides=PHOTOS + STEPS_3K + NO_CLIP,
                  env=(("JAX_DEFAULT_MATMUL_PRECISION", "highest"),)))
  return runs


PRETRAIN_IDS = 2000  # corpus identities of the pretrain plan (rendered once, before its runs)


def _pretrain() -> list[Run]:
  """jreid's own starts (issue 21): configs/pretrain.py on a synthetic corpus of PRETRAIN_IDS identities
  (disjoint from every evaluation seed), CLIP only, DINO only and both, DINO with and without colour jitter,
  1,500 steps of 64 images, each evaluated zero-shot on its seed's held-out identities; beside them the
  supervised from-scratch towers (configs/image_reid.py, configs/unireid.py, 3,000 steps) on the same seeds."""
  base = (f"corpus.num_ids={PRETRAIN_IDS}", "train.num_steps=1500", "train.checkpoint_every=500",
          "eval.missing_modalities=False", "data.num_workers=3")
  no_jitter = ("data.crops.jitter_probability=0.0",)
  variants = {"clip": ("loss.dino_weight=0.0",), "dino": ("loss.contrastive_weight=0.0",), "both": (),
              "dino-nojitter": ("loss.contrastive_weight=0.0",) + no_jitter, "both-nojitter": no_jitter}
  runs = [Run(f"pretrain-{k}", 0, "configs/pretrain.py", base + v) for k, v in variants.items()]
  runs += [Run("pretrain-both-nojitter", 1, "configs/pretrain.py", base + no_jitter)]
  runs += [Run("supervised-image_reid", s, overrides=STEPS_3K) for s in (0, 1)]
  runs += [Run("supervised-unireid", 0, "configs/unireid.py", STEPS_3K)]
  return runs


ITKM_BASE = ("model.init={init}", "eval.every=100", "data.num_workers=2")  # {init}: --init, the start
ITKM_M1 = ("itkm.scenario_embedding=False", "itkm.separation_weight=0", "itkm.dru=False",
           "itkm.cluster_matching=image", "itkm.ihm=False")


def _itkm() -> list[Run]:
  """ITKM from a pretrained start (--init; issue 21), evaluated every 100 steps: on the `small` set and on
  `dense` (about 20 images per identity and group); the start itself through ITKM (learning rate 0); the
  image encoder's learning rate (the default 3.5e-5 against the paper's 3.5e-4, and 1e-5); Stage I alone;
  ITKM(S) per scenario; the M1 ablation."""
  dense = ITKM_BASE + ("data.size=dense",)
  lr = lambda v: (f"optim.lr={v}", f"optim.warmup_init_lr={v / 100}", f"optim.min_lr={v / 100}")
  stage1 = ("itkm.stage2_steps=0", "itkm.stage3_rounds=0")
  variants = {
      "small-M": ITKM_BASE, "dense-start": dense + lr(0.0),
      "dense-M": dense, "dense-M-lr3.5e-4": dense + lr(3.5e-4), "dense-M-lr1e-5": dense + lr(1e-5),
      "dense-stage1": dense + stage1, "dense-stage1-lr3.5e-4": dense + lr(3.5e-4) + stage1,
      "dense-M1": dense + ITKM_M1,
      **{f"dense-S-{k}": dense + (f"itkm.scenarios=('{s}',)",)
         for k, s in (("vi", "visible_infrared"), ("cc", "clothes_change"), ("cr", "cross_resolution"))},
  }
  return [Run(name, 0, "configs/itkm.py", overrides) for name, overrides in variants.items()]


def _check() -> list[Run]:
  """A quick check of this driver (a minute on a CPU): one short run of each kind."""
  return [Run("jreid", 0, overrides=PHOTOS + ("train.num_steps=20",)),
          Run("peer-resnet18", 0, peer=("--size", "96,48", "--P", "8", "--K", "4", "--steps", "20",
                                        "--model", "resnet18")),
          Run("unified", 0, "configs/unified.py", ("train.num_steps=20",))]


PLANS = {"towers": _towers, "diagnose": _diagnose, "recipe": _recipe, "gap": _gap, "close": _close, "final": _final,
         "tables": _tables, "default": _default, "modality": _modality, "stable": _stable, "pretrain": _pretrain,
         "itkm": _itkm, "check": _check}


def _command(run: Run, workdir: pathlib.Path, peer_dir: pathlib.Path, market: pathlib.Path, init: str) -> list[str]:
  if run.peer is not None:
    folder = market / f"{run.seed}-{run.modalities.replace(',', '_')}"
    extra = ",".join(str(folder / t) for t in MARKET_TASKS[1:])
    return [sys.executable, str(peer_dir / "peer_reid.py"), "--root", str(folder / "traditional"), "--seed",
            str(run.seed), "--extra", extra, "--out", str(workdir / "peer.json"), *run.peer]
  if any("{init}" in o for o in run.overrides) and not init:
    raise SystemExit(f"run {run.name} starts from --init: give the start's directory")
  overrides = [f"--config.{o.replace('{init}', init)}" for o in (f"seed={run.seed}", *run.overrides)]
  return [sys.executable, "-m", "jreid.main", f"--config={run.config}", f"--workdir={workdir}", *overrides]


def _size(run: Run) -> str:
  """The synthetic set a run trains on (its data.size override; the presets' 'small' otherwise)."""
  return next((o.split("=", 1)[1] for o in run.overrides if o.startswith("data.size=")), "small")


def _prepare(runs: list[Run], peer_dir: pathlib.Path, market: pathlib.Path, env: dict) -> None:
  """Generates each seed's synthetic set (in parallel) and the peers' Market-layout folders."""
  sets = sorted({(_size(r), r.seed) for r in runs})
  make = "from data_pipelines import synthetic; import sys; synthetic.load(size=sys.argv[1], seed=int(sys.argv[2]))"
  procs = [subprocess.Popen([sys.executable, "-c", make, size, str(seed)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for size, seed in sets]
  if any(r.config == "configs/pretrain.py" for r in runs):  # the corpus, on every core, before its runs
    procs.append(subprocess.Popen([sys.executable, "-c", "from data_pipelines.corpus import synthetic_corpus; "
                                   f"synthetic_corpus({PRETRAIN_IDS})"], cwd=ROOT, env=env))
  if any(p.wait() for p in procs):
    raise SystemExit("generating the synthetic sets failed")
  for seed, modalities in sorted({(r.seed, r.modalities) for r in runs if r.peer is not None}):
    folder = market / f"{seed}-{modalities.replace(',', '_')}"
    if not folder.exists():
      subprocess.run([sys.executable, str(peer_dir / "export_market.py"), "small", str(seed), str(folder),
                      modalities], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def _curve(workdir: pathlib.Path, points: int = 12) -> dict[str, list[tuple[int, float]]]:
  """Training scalars from the run's TensorBoard events: every value of a scalar logged at most 3 x `points`
  times (evaluations, clustering rounds), else `points` evenly spaced steps and the last."""
  try:
    from tensorboard.backend.event_processing import event_accumulator
  except ImportError:
    return {}
  events = event_accumulator.EventAccumulator(str(workdir / "tensorboard"), size_guidance={"scalars": 0})
  events.Reload()
  curves = {}
  for tag in events.Tags()["scalars"]:
    values = events.Scalars(tag)
    keep = values if len(values) <= 3 * points else values[::len(values) // points] + values[-1:]
    curves[tag.removeprefix("train/")] = [(v.step, round(v.value, 4)) for v in keep]
  return curves


def _result(run: Run, workdir: pathlib.Path, seconds: float, code: int) -> dict:
  row = {"name": run.name, "seed": run.seed, "config": run.config, "overrides": run.overrides,
         "peer": run.peer, "seconds": round(seconds), "exit": code, "tasks": {}}
  if run.peer is not None and (workdir / "peer.json").exists():
    peer = json.loads((workdir / "peer.json").read_text())
    row["tasks"] = {"traditional": {"mAP": peer["final"]["mAP"], "rank1": peer["final"]["rank1"]},
                    **{k: {"mAP": v["mAP"], "rank1": v["rank1"]} for k, v in peer["extra"].items()}}
    row["curve"] = {"mAP": [(c["step"], round(c["mAP"], 2)) for c in peer["curve"]]}
  elif (workdir / "results.json").exists():
    results = json.loads((workdir / "results.json").read_text())["tasks"]
    row["tasks"] = {k: {m: 100 * v[m] for m in ("mAP", "rank1", "chance_mAP")} for k, v in results.items() if "mAP" in v}  # skipped tasks carry no figures
  if run.peer is None:  # also for a run cut off by --timeout: its curves and evaluations so far
    row["curve"] = _curve(workdir)
    if (workdir / "evaluations.json").exists():  # eval.every: mAP per task at each evaluated step
      row["evaluations"] = {step: {t: round(100 * v["mAP"], 2) for t, v in e["tasks"].items()}
                            for step, e in json.loads((workdir / "evaluations.json").read_text()).items()}
  return row


def _about() -> dict:
  """Date, versions and device of this benchmark."""
  versions = {}
  for module in ("jax", "flax", "optax", "torch", "torchvision"):
    try:
      versions[module] = __import__(module).__version__
    except ImportError:
      pass
  import jax
  return {"date": time.strftime("%Y-%m-%d"), "versions": versions, "python": sys.version.split()[0],
          "device": str(jax.devices()[0].device_kind)}


def _table(rows: list[dict]) -> str:
  tasks = list(dict.fromkeys(t for r in rows for t in r["tasks"]))
  lines = ["| " + " | ".join(["run", "seed", *tasks, "s"]) + " |", "|---|---:|" + "---:|" * (len(tasks) + 1)]
  for r in rows:
    cells = [f"{r['tasks'][t]['mAP']:.1f}" if t in r["tasks"] else "–" for t in tasks]
    lines.append("| " + " | ".join([r["name"], str(r["seed"]), *cells, str(r["seconds"])]) + " |")
  chance = {t: r["tasks"][t]["chance_mAP"] for r in rows for t in r["tasks"] if "chance_mAP" in r["tasks"][t]}
  lines.append("| " + " | ".join(["chance", "", *(f"{chance[t]:.1f}" if t in chance else "–" for t in tasks), ""])
               + " |")
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("plan", choices=sorted(PLANS))
  parser.add_argument("--out", required=True, type=pathlib.Path)
  parser.add_argument("--peer", required=True, type=pathlib.Path, help="folder with peer_reid.py, export_market.py")
  parser.add_argument("--jobs", type=int, default=16, help="runs at a time")
  parser.add_argument("--timeout", type=int, default=3600, help="seconds before a run is stopped")
  parser.add_argument("--runs", default="", help="only the plan's runs whose name matches this regex")
  parser.add_argument("--init", type=pathlib.Path, help="the start (a model directory) of the runs that take one")
  args = parser.parse_args()
  init = str(args.init.resolve()) if args.init else ""
  os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # _about() starts jax in this process too
  runs = [r for r in PLANS[args.plan]() if re.search(args.runs, r.name)]
  env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1",
         "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
  market = args.out / "market"
  started = time.time()
  _prepare(runs, args.peer.resolve(), market, env)
  print(f"prepared {len({r.seed for r in runs})} synthetic sets in {time.time() - started:.0f}s", flush=True)
  waiting, active, rows, about = list(runs), {}, [], _about()
  while waiting or active:
    while waiting and len(active) < args.jobs:
      run = waiting.pop(0)
      workdir = args.out / f"{run.name}-s{run.seed}"
      workdir.mkdir(parents=True, exist_ok=True)
      log = open(workdir / "log", "w")
      proc = subprocess.Popen(_command(run, workdir, args.peer.resolve(), market, init), cwd=ROOT, env={**env, **dict(run.env)},
                              stdout=log, stderr=subprocess.STDOUT)
      active[proc] = (run, workdir, time.time(), log)
    time.sleep(2)
    for proc, (run, workdir, start, log) in list(active.items()):
      if proc.poll() is None and time.time() - start < args.timeout:
        continue
      if proc.poll() is None:
        proc.kill()
      log.close()
      del active[proc]
      try:
        rows.append(_result(run, workdir, time.time() - start, proc.wait()))
      except (OSError, ValueError, KeyError) as error:  # one unreadable result must not lose the others
        rows.append({"name": run.name, "seed": run.seed, "seconds": round(time.time() - start), "exit": -1,
                     "tasks": {}, "error": f"{type(error).__name__}: {error}"})
      print(f"{run.name} s{run.seed}: exit {rows[-1]['exit']} in {rows[-1]['seconds']}s "
            + " ".join(f"{t} {m['mAP']:.1f}" for t, m in rows[-1]["tasks"].items()), flush=True)
      _write_summary(args.out, rows, about)
  print(_table(rows))


def _write_summary(out: pathlib.Path, rows: list[dict], about: dict) -> None:
  """summary.json and summary.md of the runs finished so far (rewritten after each, so a cut-off call keeps them)."""
  rows = sorted(rows, key=lambda r: (r["name"], r["seed"]))
  (out / "summary.json").write_text(json.dumps({"about": about, "runs": rows}, indent=1))
  (out / "summary.md").write_text(_table(rows))


if __name__ == "__main__":
  main()
