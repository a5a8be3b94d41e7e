"""The synthetic set: determinism, caching, identity split, task fields, infrared."""

import collections
import dataclasses
import os
import pathlib

import numpy as np
import pytest

from data_pipelines import instructions
from data_pipelines.records import MODALITIES, QUERY_KINDS
from data_pipelines.synthetic import build, figure, identities, load, render, tasks
from data_pipelines.synthetic.cameras import CAMERAS
from data_pipelines.synthetic.identities import Paint

PROTOCOLS = {
  "traditional": "standard", "clothes_changing": "cc", "visible_infrared": "v2i",
  "cross_resolution": "cross_resolution", "text": "text", "sketch": "sketch", "text+sketch": "text+sketch",
  "clothes_template": "target_clothes", "language_instructed": "target_clothes",
}


def _files(directory: pathlib.Path) -> dict[str, bytes]:
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _directory(data) -> pathlib.Path:
  return pathlib.Path(data.train[0].path).parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return load(root=str(tmp_path_factory.mktemp("a")), size="tiny", seed=0, num_workers=1)


def test_same_seed_same_bytes_whatever_the_workers(tiny, tmp_path):
  again = load(root=str(tmp_path), size="tiny", seed=0, num_workers=2)
  first, second = _files(_directory(tiny)), _files(_directory(again))
  assert first.keys() == second.keys() and "manifest.json" in first
  assert all(first[k] == second[k] for k in first)


def test_other_seed_differs(tiny, tmp_path):
  other = load(root=str(tmp_path), size="tiny", seed=1, num_train_ids=2, num_test_ids=2)
  first, second = _files(_directory(tiny)), _files(_directory(other))
  assert first["train/00000/template_0.png"] != second["train/00000/template_0.png"]
  assert [r.captions for r in tiny.train[:5]] != [r.captions for r in other.train[:5]]


def test_second_load_reads_the_cache(tiny, monkeypatch):
  directory = _directory(tiny)
  stamp = os.stat(directory / build.MANIFEST).st_mtime_ns

  def fail(*args):
    raise AssertionError("regenerated")

  monkeypatch.setattr(build, "_generate", fail)
  again = load(root=str(directory.parent), size="tiny", seed=0)
  assert again == tiny
  assert os.stat(directory / build.MANIFEST).st_mtime_ns == stamp
  assert [p.name for p in directory.parent.iterdir()] == [directory.name]  # No temporary leftovers.


def test_cache_location(monkeypatch, tmp_path):
  config = build.PRESETS["tiny"]
  monkeypatch.setenv("JREID_DATA_DIR", str(tmp_path))
  assert build.dataset_dir(None, "tiny", 3, config).startswith(str(tmp_path / "synthetic" / "tiny-3-"))
  assert build.dataset_dir("/x", "tiny", 3, config).startswith("/x/tiny-3-")
  bigger = dataclasses.replace(config, num_train_ids=7)
  assert build.dataset_dir("/x", "tiny", 3, config) != build.dataset_dir("/x", "tiny", 3, bigger)


def test_train_records(tiny):
  train = tiny.train
  assert sorted({r.pid for r in train}) == list(range(tiny.num_train_ids))
  assert {r.modality for r in train} == set(MODALITIES)
  assert all(os.path.isfile(r.path) for r in train)
  paths = {r.path for r in train}
  for r in train:
    assert r.clothes_id >= 0
    if r.modality == "sketch" or r.scale > 1:
      assert r.source in paths
    if r.modality == "rgb" and r.scale == 1:
      assert r.captions and r.instruction and os.path.isfile(r.template)
  assert any(r.scale > 1 for r in train)
  assert {r.scenario for r in train} == {"", *build.SCENARIOS}
  assert {r.modality for r in train if r.scenario == "visible_infrared"} == {"rgb", "ir"}
  assert {r.scale > 1 for r in train if r.scenario == "cross_resolution"} == {False, True}


def test_train_and_test_identities_are_disjoint(tiny):
  train = {r.pid for r in tiny.train}
  for task in tiny.tasks.values():
    assert not train & {r.pid for r in (*task.query, *task.gallery)}


def test_every_task_and_its_fields(tiny):
  assert {name: t.protocol for name, t in tiny.tasks.items()} == PROTOCOLS
  for name, task in tiny.tasks.items():
    assert task.query and task.gallery and task.query_kind in QUERY_KINDS, name
    for q in task.query:
      assert any(tasks.is_match(task.protocol, q, g) for g in task.gallery), (name, q)
    for q in task.query:
      assert q.path == "" if task.query_kind == "text" else os.path.isfile(q.path)
    assert all(os.path.isfile(g.path) for g in task.gallery)
  t = tiny.tasks
  assert len({r.camid for r in t["traditional"].gallery}) > 2
  for name, task in (("traditional", "traditional"), ("clothes_changing", "clothes_changing"),
                     ("visible_infrared", "visible_infrared")):
    assert all(r.instruction in instructions.POOLS[task] for r in (*t[name].query, *t[name].gallery))
  for name, scenario in (("clothes_changing", "clothes_change"), ("visible_infrared", "visible_infrared"),
                         ("cross_resolution", "cross_resolution")):
    assert {r.scenario for r in (*t[name].query, *t[name].gallery)} == {scenario}
  assert {r.modality for r in t["visible_infrared"].query} == {"rgb"}
  assert {r.modality for r in t["visible_infrared"].gallery} == {"ir"}
  assert all(r.scale > 1 for r in t["cross_resolution"].query)
  assert all(r.scale == 1 for r in t["cross_resolution"].gallery)
  assert all(r.path == "" and r.camid == -1 and len(r.captions) == 1 for r in t["text"].query)
  for name in ("sketch", "text+sketch"):
    gallery = {r.path for r in t[name].gallery}
    assert all(r.modality == "sketch" and r.source in gallery for r in t[name].query)
  assert all(len(r.captions) == 1 for r in t["text+sketch"].query)
  for r in t["clothes_template"].query:
    assert os.path.isfile(r.template) and r.target_clothes_id not in (-1, r.clothes_id)
  for r in t["language_instructed"].query:
    assert r.instruction and r.target_clothes_id not in (-1, r.clothes_id)
  for name in ("clothes_template", "language_instructed"):  # the gallery's own outfit would name the answer
    assert all(not r.instruction and not r.template for r in t[name].gallery)


def test_identities_share_clothes_colours_but_not_bodies():
  people = identities.sample_identities(0, 100, 100, 0)
  owners = {}
  for p in people:
    for o in p.outfits:
      owners.setdefault((o.upper_colour, o.lower_colour), set()).add(p.pid)
  outfits = [(p.pid, (o.upper_colour, o.lower_colour)) for p in people for o in p.outfits]
  assert sum(len(owners[k] - {pid}) > 0 for pid, k in outfits) > 0.5 * len(outfits)
  bodies = {(p.build, p.height, p.skin, p.hair_style, p.hair_colour, p.accessory, p.bag) for p in people}
  assert len(bodies) > 0.9 * len(people)


def test_infrared_is_grey_and_follows_reflectance_not_colour():
  who = identities.sample_identities(0, 0, 1, 0)[0]
  # A black garment that reflects near infrared strongly, as many dyed fabrics do.
  outfit = dataclasses.replace(who.outfits[0], upper_paint=Paint((30, 30, 32), 0.85), pattern="plain")
  staged = render.stage(who, outfit, CAMERAS[1], 0, np.random.default_rng(0))
  rgb = render.develop_rgb(staged, CAMERAS[1], np.random.default_rng(1))
  ir = render.develop_infrared(staged, CAMERAS[6], np.random.default_rng(1))
  assert ir.shape == rgb.shape == (render.HEIGHT, render.WIDTH, 3) and ir.dtype == np.uint8
  assert np.array_equal(ir[..., 0], ir[..., 1]) and np.array_equal(ir[..., 0], ir[..., 2])
  gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  upper = render._downsample((staged.mat == figure.UPPER).astype(np.float32)) == 1
  assert gray[upper].mean() < 80 and ir[..., 0][upper].mean() > 150
  assert np.corrcoef(gray.ravel(), ir[..., 0].ravel())[0, 1] ** 2 < 0.6


def test_lowres_per_outfit_copies_that_many_first_photos(tiny, tmp_path):
  def lowres_sources(data):
    out = {}
    for r in data.train:
      if r.scale > 1:
        out.setdefault((r.pid, r.clothes_id), []).append(r.source)
    return out

  once = lowres_sources(tiny)
  assert once and all(len(v) == 1 and "photo_" in v[0] and "_0_c" in v[0] for v in once.values())
  dense = load(root=str(tmp_path), size="tiny", seed=0, num_train_ids=2, num_test_ids=1, lowres_per_outfit=2)
  twice = lowres_sources(dense)
  assert twice and all(len(set(v)) == 2 for v in twice.values())
  per_outfit = collections.Counter((q.pid, q.clothes_id) for q in dense.tasks["cross_resolution"].query)
  assert per_outfit and set(per_outfit.values()) == {2}
