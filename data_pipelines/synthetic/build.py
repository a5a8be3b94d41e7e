"""Generates the synthetic set in parallel, caches it on disk and loads it as ReIDData.

A dataset lives in `<base>/<preset>-<seed>-<hash>/` (base: the `root`
argument, else `$JREID_DATA_DIR/synthetic`, else `~/.cache/jreid/synthetic`;
hash: the generator's source code and the configuration): PNG images under
`train/` and `test/` and `manifest.json` with every record (paths relative to
the directory). It is written to a temporary directory renamed into place, so
a directory with a manifest is always complete; later loads only read the
manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import pathlib
import shutil
import tempfile
import zlib

import numpy as np
from PIL import Image
from tqdm import tqdm

from data_pipelines import sketch
from data_pipelines.records import EvalTask, Record, ReIDData
from data_pipelines.synthetic import captions, identities, render, tasks
from data_pipelines.synthetic.cameras import CAMERAS, INFRARED_CAMERAS, VISIBLE_CAMERAS

MANIFEST = "manifest.json"
TEMPLATE_CAMID = len(CAMERAS)  # Clothes templates come from no camera; they get their own id.
SCENARIOS = ("visible_infrared", "clothes_change", "cross_resolution")
LOW_RESOLUTION_SCALES = (2, 3, 4, 6, 8)
_PATH_FIELDS = ("path", "template", "source")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Record) if f.default is not dataclasses.MISSING}


@dataclasses.dataclass(frozen=True)
class Config:
  """Sizes of the set. Each identity has 1-3 outfits (2.1 on average)."""

  num_train_ids: int
  num_test_ids: int
  photos_per_outfit: int = 4  # Visible photos per outfit, from three cameras; at least 3.
  ir_per_id: int = 4  # Infrared shots per identity, alternating the infrared cameras.
  captions_per_image: int = 3
  lowres_per_outfit: int = 1  # Low-resolution copies of an outfit's first photos, one each.


PRESETS = {
  "tiny": Config(num_train_ids=6, num_test_ids=6, photos_per_outfit=3, ir_per_id=2, captions_per_image=2),
  "small": Config(num_train_ids=150, num_test_ids=100),
  "medium": Config(num_train_ids=750, num_test_ids=500),
  "large": Config(num_train_ids=2500, num_test_ids=1500),
  # About 20 images per identity and homogeneous group, as in ITKM's real datasets (small has about 5).
  "dense": Config(num_train_ids=150, num_test_ids=100, photos_per_outfit=10, ir_per_id=20, lowres_per_outfit=5),
}


@dataclasses.dataclass(frozen=True)
class _Job:
  identity: identities.Identity
  split: str
  seed: int
  config: Config
  directory: str


def _save(image: np.ndarray, directory: str, relative: str) -> str:
  """Writes a PNG: (H, W, 3) colour or (H, W) gray (infrared, sketches; readers convert to RGB)."""
  Image.fromarray(image).save(os.path.join(directory, relative), compress_level=1, compress_type=zlib.Z_RLE)
  return relative


def _render_identity(job: _Job) -> list[tasks.Item]:
  """Renders every image of one identity; returns them with paths relative to the dataset."""
  who, config, seed = job.identity, job.config, job.seed
  folder = f"{job.split}/{who.pid:05d}"
  os.makedirs(os.path.join(job.directory, folder), exist_ok=True)
  scenario = SCENARIOS[who.pid % len(SCENARIOS)] if job.split == "train" else ""
  items = []
  camera_rng = np.random.default_rng([seed, 2, who.pid])
  for o, outfit in enumerate(who.outfits):
    template = _save(render.template(who, outfit), job.directory, f"{folder}/template_{o}.png")
    items.append(tasks.Item("template", o, 0, Record(template, who.pid, TEMPLATE_CAMID, outfit.clothes_id,
                                                     "template")))
    cams = camera_rng.choice(VISIBLE_CAMERAS, size=min(3, config.photos_per_outfit), replace=False)
    for j in range(config.photos_per_outfit):
      camid = int(cams[j % len(cams)])
      rng = np.random.default_rng([seed, 3, who.pid, o, j])
      image, mask, view = render.photo(who, outfit, CAMERAS[camid], seed, rng)
      path = _save(image, job.directory, f"{folder}/photo_{o}_{j}_c{camid}.png")
      texts = captions.captions(who, outfit, view, config.captions_per_image, rng)
      photo = Record(path, who.pid, camid, outfit.clothes_id, scenario=scenario, captions=texts,
                     instruction=captions.clothes_instruction(outfit, rng), template=template)
      items.append(tasks.Item("photo", o, j, photo))
      if j < config.lowres_per_outfit:
        scale = int(rng.choice(LOW_RESOLUTION_SCALES))
        low = _save(render.low_resolution(image, scale), job.directory, f"{folder}/lowres_{o}_{j}_x{scale}_c{camid}.png")
        items.append(tasks.Item("lowres", o, j, Record(
          low, who.pid, camid, outfit.clothes_id, scale=scale, captions=texts, source=path,
          scenario="cross_resolution" if scenario == "cross_resolution" else "")))
      if j == 1:
        drawn = _save(sketch.sketch(image, mask)[..., 0], job.directory, f"{folder}/sketch_{o}_c{camid}.png")
        items.append(tasks.Item("sketch", o, j, Record(drawn, who.pid, camid, outfit.clothes_id, "sketch",
                                                       captions=texts, source=path)))
  for k in range(config.ir_per_id):
    camid, o = INFRARED_CAMERAS[k % len(INFRARED_CAMERAS)], k % len(who.outfits)
    image, _, _ = render.photo(who, who.outfits[o], CAMERAS[camid], seed,
                               np.random.default_rng([seed, 4, who.pid, k]))
    path = _save(image[..., 0], job.directory, f"{folder}/ir_{o}_{k}_c{camid}.png")
    items.append(tasks.Item("ir", o, k, Record(path, who.pid, camid, who.outfits[o].clothes_id, "ir",
                                               scenario="visible_infrared" if scenario == "visible_infrared" else "")))
  return items


def _encode(record: Record) -> dict:
  return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(record).items()
          if k not in _DEFAULTS or v != _DEFAULTS[k]}


def _decode(fields: dict, directory: str) -> Record:
  fields = dict(fields, captions=tuple(fields.get("captions", ())))
  for key in _PATH_FIELDS:
    if fields.get(key):
      fields[key] = os.path.join(directory, fields[key])
  return Record(**fields)


def _source_digest() -> str:
  """Hash of the generator's code: a change of it makes a new cache directory."""
  here = pathlib.Path(__file__).parent
  digest = hashlib.sha256()
  for path in sorted(here.glob("*.py")) + [here.parent / "sketch.py", here.parent / "instructions.py"]:
    digest.update(path.read_bytes())
  return digest.hexdigest()


def dataset_dir(root: str | None, size: str, seed: int, config: Config) -> str:
  """Where the set of this preset, seed and configuration is cached."""
  if root:
    base = root
  elif os.environ.get("JREID_DATA_DIR"):
    base = os.path.join(os.environ["JREID_DATA_DIR"], "synthetic")
  else:
    base = os.path.expanduser("~/.cache/jreid/synthetic")
  key = json.dumps(dataclasses.asdict(config), sort_keys=True) + _source_digest()
  return os.path.join(base, f"{size}-{seed}-{hashlib.sha256(key.encode()).hexdigest()[:10]}")


def _generate(directory: str, size: str, seed: int, config: Config, num_workers: int | None) -> None:
  """Renders the whole set into a temporary directory, then renames it to `directory`."""
  if config.photos_per_outfit < 3:
    raise ValueError("photos_per_outfit must be at least 3 (a query photo and two gallery cameras)")
  train = identities.sample_identities(seed, 0, config.num_train_ids, 0)
  test = identities.sample_identities(seed, config.num_train_ids, config.num_test_ids,
                                      train[-1].outfits[-1].clothes_id + 1 if train else 0)
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}-", dir=parent)
  try:
    jobs = [_Job(who, split, seed, config, scratch) for split, people in (("train", train), ("test", test))
            for who in people]
    workers = min(num_workers or os.cpu_count() or 1, len(jobs))
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    results = pool.imap(_render_identity, jobs, chunksize=max(1, len(jobs) // (8 * workers))) if pool else map(
      _render_identity, jobs)
    try:
      # A bar on a terminal only (disable=None): no redraws in a log.
      rendered = list(tqdm(results, total=len(jobs), desc=f"synthetic {size}-{seed}", unit="id", disable=None))
    finally:
      if pool:
        pool.close()
        pool.join()
    train_records = [i.record for items in rendered[:len(train)] for i in items]
    test_items = [i for items in rendered[len(train):] for i in items]
    manifest = {
      "name": "synthetic", "preset": size, "seed": seed, "config": dataclasses.asdict(config),
      "train": [_encode(r) for r in train_records],
      "tasks": {name: {"protocol": t.protocol, "query_kind": t.query_kind,
                       "query": [_encode(r) for r in t.query], "gallery": [_encode(r) for r in t.gallery]}
                for name, t in tasks.build_tasks(test_items, seed).items()},
    }
    with open(os.path.join(scratch, MANIFEST), "w") as f:
      json.dump(manifest, f, indent=0, sort_keys=True)
    try:
      os.rename(scratch, directory)
    except OSError:  # Another process finished the same set first.
      if not os.path.exists(os.path.join(directory, MANIFEST)):
        raise
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def _read(directory: str) -> ReIDData:
  with open(os.path.join(directory, MANIFEST)) as f:
    manifest = json.load(f)
  return ReIDData(
    name=manifest["name"], train=tuple(_decode(r, directory) for r in manifest["train"]),
    tasks={name: EvalTask(name, t["protocol"], t["query_kind"],
                          tuple(_decode(r, directory) for r in t["query"]),
                          tuple(_decode(r, directory) for r in t["gallery"]))
           for name, t in manifest["tasks"].items()})


def load(root: str | None = None, size: str = "small", seed: int = 0, num_workers: int | None = None, *,
         num_train_ids: int | None = None, num_test_ids: int | None = None, photos_per_outfit: int | None = None,
         ir_per_id: int | None = None, captions_per_image: int | None = None,
         lowres_per_outfit: int | None = None) -> ReIDData:
  """The synthetic set of a preset ('tiny', 'small', 'medium', 'large', 'dense') and seed, generated on first use.

  Args:
    root: cache base directory (default `$JREID_DATA_DIR/synthetic` or
      `~/.cache/jreid/synthetic`).
    size: the preset; the keyword arguments after `num_workers` override its sizes.
    seed: everything (identities, shots, captions, task instructions) follows from it.
    num_workers: generation processes (default: all cores). They are spawned,
      so a script that generates must call this under `if __name__ == "__main__":`.
  """
  if size not in PRESETS:
    raise ValueError(f"unknown synthetic preset {size!r}; expected one of {sorted(PRESETS)}")
  overrides = dict(num_train_ids=num_train_ids, num_test_ids=num_test_ids, photos_per_outfit=photos_per_outfit,
                   ir_per_id=ir_per_id, captions_per_image=captions_per_image, lowres_per_outfit=lowres_per_outfit)
  config = dataclasses.replace(PRESETS[size], **{k: v for k, v in overrides.items() if v is not None})
  directory = dataset_dir(root, size, seed, config)
  if not os.path.exists(os.path.join(directory, MANIFEST)):
    _generate(directory, size, seed, config, num_workers)
  return _read(directory)
