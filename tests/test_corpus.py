"""Unlabeled pretraining corpora: the synthetic corpus's own identities, its shards and cache; image folders."""

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

from data_pipelines import corpus
from data_pipelines.synthetic import identities, render


def _who(identity):
  """What makes a person, without the labels (pid, clothes ids) the generator numbers them by."""
  return dataclasses.replace(identity, pid=0, outfits=tuple(dataclasses.replace(o, clothes_id=0)
                                                            for o in identity.outfits))


def test_corpus_identities_are_disjoint_from_every_evaluation_seed():
  # A seed's evaluation set takes identities pids 0.. of sample_identities(seed, ...) (train, then test);
  # 400 pids cover the tiny and small presets of seeds 0-4 and the first 400 of the larger ones.
  evaluation = {_who(i) for seed in range(5) for i in identities.sample_identities(seed, 0, 400, 0)}
  assert len(evaluation) == 5 * 400  # Continuous attributes (paints, proportions) tell identities apart.
  for seed in (0, 1):
    assert not evaluation & {_who(corpus.corpus_identity(seed, pid)) for pid in range(400)}
  # The check catches a shared stream: a key padded with 0, as SeedSequence pads, gives evaluation's person.
  same = identities.sample_identity(np.random.default_rng([3, 1, 17, 0]), 999, 55)
  assert _who(same) in evaluation


def _render_calls(monkeypatch):
  calls = []
  photo = render.photo

  def counted(who, *args):
    calls.append(who.pid)
    return photo(who, *args)

  monkeypatch.setattr(render, "photo", counted)
  return calls


def test_synthetic_corpus_renders_shards_caches_and_grows(tmp_path, monkeypatch):
  calls = _render_calls(monkeypatch)
  images = corpus.synthetic_corpus(3, seed=0, root=str(tmp_path), num_workers=1, photos_per_outfit=2,
                                   captions_per_image=2, shard_size=2)
  outfits = [len(corpus.corpus_identity(0, pid).outfits) for pid in range(4)]
  assert len(images) == 2 * sum(outfits[:3]) and sorted(set(calls)) == [0, 1, 2]
  assert [f.name for f in dataclasses.fields(corpus.CorpusImage)] == ["path", "captions"]  # No label to read.
  assert all(len(i.captions) == 2 and all(i.captions) for i in images)
  with Image.open(images[0].path) as image:
    assert image.size == (render.WIDTH, render.HEIGHT) and image.mode == "RGB"
  shard = os.path.dirname(images[0].path)
  assert sorted(os.listdir(shard))[:3] == ["000000.png", "000001.png", "000002.png"]
  calls.clear()
  assert corpus.synthetic_corpus(3, seed=0, root=str(tmp_path), num_workers=1, photos_per_outfit=2,
                                 captions_per_image=2, shard_size=2) == images and not calls
  grown = corpus.synthetic_corpus(4, seed=0, root=str(tmp_path), num_workers=1, photos_per_outfit=2,
                                  captions_per_image=2, shard_size=2)
  assert sorted(set(calls)) == [2, 3]  # The full shard of identities 0-1 is reused.
  assert grown[:2 * sum(outfits[:2])] == images[:2 * sum(outfits[:2])] and len(grown) == 2 * sum(outfits)


def test_synthetic_corpus_in_parallel_equals_serial(tmp_path):
  kwargs = dict(seed=1, photos_per_outfit=1, captions_per_image=1, shard_size=1)
  serial = corpus.synthetic_corpus(2, root=str(tmp_path / "serial"), num_workers=1, **kwargs)
  parallel = corpus.synthetic_corpus(2, root=str(tmp_path / "parallel"), num_workers=2, **kwargs)
  assert [i.captions for i in serial] == [i.captions for i in parallel]
  for a, b in zip(serial, parallel):
    np.testing.assert_array_equal(np.asarray(Image.open(a.path)), np.asarray(Image.open(b.path)))


def _png(path, value):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((16, 8, 3), value, np.uint8)).save(path)


def test_folder_corpus_searches_recursively_with_optional_captions(tmp_path):
  _png(tmp_path / "imgs" / "CUHK01" / "a.png", 10)
  _png(tmp_path / "imgs" / "x" / "y" / "b.jpg", 20)
  _png(tmp_path / "imgs" / "c.PNG", 30)
  (tmp_path / "imgs" / "notes.txt").write_text("not an image")
  images = corpus.folder_corpus(str(tmp_path / "imgs"))
  assert [os.path.relpath(i.path, tmp_path / "imgs") for i in images] == ["CUHK01/a.png", "c.PNG", "x/y/b.jpg"]
  assert all(i.captions == () for i in images)
  annotations = [{"id": 7, "split": "train", "file_path": "CUHK01/a.png", "captions": [" A man. ", "Red top."]},
                 {"id": 8, "split": "test", "img_path": "x/y/b.jpg", "captions": ["A woman."]},
                 {"id": 9, "split": "train", "file_path": "gone.png", "captions": ["Missing."]}]
  (tmp_path / "reid_raw.json").write_text(json.dumps(annotations))
  captioned = corpus.folder_corpus(str(tmp_path / "imgs"), str(tmp_path / "reid_raw.json"))
  assert [i.captions for i in captioned] == [("A man.", "Red top."), (), ("A woman.",)]
  with pytest.raises(ValueError, match="names no image"):
    corpus.folder_corpus(str(tmp_path / "imgs" / "x"), str(tmp_path / "reid_raw.json"))
  with pytest.raises(FileNotFoundError, match="no image"):
    corpus.folder_corpus(str(tmp_path / "empty"))

