"""Train -> export -> index -> query through the command lines, then resume and bad input.

The smoke preset trains for 10 steps and barely learns, so the run here trains
for 300 steps, without augmentation, a slightly wider model (2 layers of width
64, patch 8) on the tiny synthetic set, all 6 identities in every batch. Six
training identities are too few to learn features that carry over to the
set's 6 unseen test identities (rank-1 stays near chance there), so the
gallery is the training identities' photos and each query is a photo held out
of the gallery (the first photo of each outfit), to be matched to other
cameras' photos of the same person.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data_pipelines import synthetic
from jreid import inference, search

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN_FLAGS = (
    "--config.train.num_steps=300", "--config.train.checkpoint_every=300", "--config.data.num_ids=6",
    "--config.model.vision.width=64", "--config.model.vision.layers=2", "--config.model.vision.mlp_dim=128",
    "--config.model.vision.embed_dim=64", "--config.model.vision.patch_size=8",
    "--config.data.augment.padding=0", "--config.data.augment.erasing=0.0", "--config.data.augment.color_jitter=0.0",
    "--config.data.augment.grayscale=0.0", "--config.eval.tasks=('traditional',)")


def _cli(env, *args):
  result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
  return result.stdout


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, tiny_synthetic):
  """Runs the whole path once; returns its folders and the parsed ranked lists."""
  root = tmp_path_factory.mktemp("e2e")
  shutil.copytree(tiny_synthetic, root / "data" / "synthetic")  # the session's tiny set (conftest.py)
  env = dict(os.environ, JREID_DATA_DIR=str(root / "data"), JAX_PLATFORMS="cpu")
  _cli(env, "jreid.main", "--config=configs/image_reid.py:smoke", f"--workdir={root / 'run'}", *TRAIN_FLAGS)
  _cli(env, "jreid.convert", "export", "--workdir", str(root / "run"), "--dst", str(root / "model"))
  data = synthetic.load(root=str(root / "data" / "synthetic"), size="tiny")
  queries = []
  for record in data.train:
    name = os.path.basename(record.path)
    if not name.startswith("photo_"):
      continue
    folder = "queries" if name.split("_")[2] == "0" else "gallery"
    target = root / folder / f"{record.pid:05d}" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(record.path, target)
    if folder == "queries":
      queries.append({"image": str(target.relative_to(root))})
  (root / "gallery" / "README.txt").write_text("not an image")
  (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
  index_out = _cli(env, "jreid.search", "index", "--model", str(root / "model"), "--images", str(root / "gallery"),
                   "--out", str(root / "index"), "--shard-size", "16")
  query_out = _cli(env, "jreid.search", "query", "--index", str(root / "index"), "--queries",
                   str(root / "queries.jsonl"), "--topk", "5", "--picture", str(root / "ranked.png"), "--json",
                   str(root / "ranked.json"))
  results = json.loads((root / "ranked.json").read_text())
  return root, index_out, query_out, results


def test_trained_model_finds_the_identity_at_rank_1(e2e):
  root, index_out, query_out, results = e2e
  assert "skipping 1 files that are not images" in index_out
  assert len(results) >= 12
  hits = [r["results"][0]["path"].split("/")[0] == pathlib.Path(r["query"]["image"]).parent.name for r in results]
  print(f"rank-1 identity hits: {sum(hits)} of {len(hits)}")
  assert np.mean(hits) > 0.5
  assert "query 1 (image): image=" in query_out and "    1  " in query_out
  assert [len(r["results"]) for r in results] == [5] * len(results)
  with Image.open(root / "ranked.png") as picture:
    assert picture.size[1] >= len(results) * 128


def test_single_query_prints_and_draws(e2e, capsys):
  root, _, _, results = e2e
  image = root / results[0]["query"]["image"]
  search.main(["query", "--index", str(root / "index"), "--image", str(image), "--instruction", "Ignore clothes.",
               "--topk", "3", "--picture", str(root / "one.png")])
  out = capsys.readouterr().out
  assert "query 1 (image+instruction)" in out and "ranked-result picture" in out
  assert len([line for line in out.splitlines() if line.startswith("    ")]) == 3
  assert (root / "one.png").is_file()


def test_query_without_picture_writes_none(e2e, tmp_path, monkeypatch, capsys):
  root, _, _, results = e2e
  monkeypatch.chdir(tmp_path)
  search.main(["query", "--index", str(root / "index"), "--image", str(root / results[0]["query"]["image"]),
               "--topk", "2"])
  assert "ranked-result picture" not in capsys.readouterr().out
  assert not list(tmp_path.iterdir())


def test_interrupted_index_resumes(e2e, tmp_path, capsys):
  root = e2e[0]
  encoder = inference.load(str(root / "model"))
  out = tmp_path / "index"
  search.build_index(encoder, str(root / "gallery"), str(out), shard_size=8, show_progress=False)
  first = np.load(out / "features-00000.npz")["features"]
  finished = (out / "features-00000.npz").stat().st_mtime_ns
  (out / "features-00002.npz").unlink()  # as if stopped while encoding shard 2
  with pytest.raises(SystemExit, match="1"):
    search.main(["query", "--index", str(out), "--image", str(root / e2e[3][0]["query"]["image"])])
  assert "is incomplete (1 shards missing)" in capsys.readouterr().err
  search.build_index(encoder, str(root / "gallery"), str(out), shard_size=8, show_progress=False)
  assert "resuming: " in capsys.readouterr().out
  assert (out / "features-00000.npz").stat().st_mtime_ns == finished
  assert (out / "features-00002.npz").is_file()
  np.testing.assert_array_equal(np.load(out / "features-00000.npz")["features"], first)


def _shards(index):
  return {p.name: np.load(p)["features"] for p in sorted(index.glob("features-*.npz"))}


def test_killed_index_resumes_to_the_clean_result(e2e, tmp_path, monkeypatch, capsys):
  """Stopped (Ctrl-C) in the middle of shard 2, the same command finishes the index: equal to one never stopped."""
  root = e2e[0]
  argv = ["index", "--model", str(root / "model"), "--images", str(root / "gallery"), "--shard-size", "8"]
  search.main([*argv, "--out", str(tmp_path / "clean")])
  encode, calls = inference.Encoder.encode_images, []

  def stop_at_shard_2(self, paths, on_chunk=None):
    calls.append(len(paths))
    if len(calls) == 3:
      on_chunk(3)
      raise KeyboardInterrupt
    return encode(self, paths, on_chunk)

  monkeypatch.setattr(inference.Encoder, "encode_images", stop_at_shard_2)
  with pytest.raises(SystemExit, match="130"):
    search.main([*argv, "--out", str(tmp_path / "index")])
  assert sorted(_shards(tmp_path / "index")) == ["features-00000.npz", "features-00001.npz"]
  monkeypatch.setattr(inference.Encoder, "encode_images", encode)
  capsys.readouterr()
  search.main([*argv, "--out", str(tmp_path / "index")])
  assert "resuming: 16 of " in capsys.readouterr().out
  clean, resumed = _shards(tmp_path / "clean"), _shards(tmp_path / "index")
  assert sorted(clean) == sorted(resumed) and len(clean) > 2
  for name in clean:
    np.testing.assert_array_equal(resumed[name], clean[name])


def test_index_skips_unreadable_images_with_their_count(e2e, tmp_path, capsys):
  root = e2e[0]
  broken = tmp_path / "broken"
  shutil.copytree(root / "gallery", broken)
  (broken / "00000" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
  good = sorted(broken.glob("*/photo_*"))[3]
  (broken / "00001" / "cut.jpg").write_bytes(good.read_bytes()[:200])
  search.main(["index", "--model", str(root / "model"), "--images", str(broken), "--out", str(tmp_path / "index")])
  out, err = capsys.readouterr()
  warnings = [line for line in err.splitlines() if line.startswith("warning: skipping an unreadable image")]
  assert len(warnings) == 2 and "truncated.png" in warnings[0] and "cut.jpg" in warnings[1]
  assert "skipped 2 unreadable images" in out
  search.main(["query", "--index", str(tmp_path / "index"), "--image", str(good), "--topk", "1000"])
  ranked = capsys.readouterr().out
  assert "truncated.png" not in ranked and "cut.jpg" not in ranked
  assert len([line for line in ranked.splitlines() if line.startswith("  ")]) == len(list(broken.glob("*/photo_*")))


def _fails(capsys, argv, message):
  with pytest.raises(SystemExit) as exit_info:
    search.main(argv)
  assert exit_info.value.code == 1
  assert message in capsys.readouterr().err


def test_bad_input_is_a_clear_error(e2e, tmp_path, capsys):
  root = e2e[0]
  model, index = str(root / "model"), str(root / "index")
  query = str(root / e2e[3][0]["query"]["image"])
  _fails(capsys, ["query", "--index", index, "--text", "a woman in a red coat"],
         "image_reid model in " + model + " cannot encode text queries")
  _fails(capsys, ["query", "--index", index, "--image", query, "--text", "a coat"], "cannot make a query of")
  odd = tmp_path / "query.xyz"
  odd.write_bytes(b"\0" * 10)
  _fails(capsys, ["query", "--index", index, "--image", str(odd)], "has an unknown image format")
  (tmp_path / "empty").mkdir()
  _fails(capsys, ["index", "--model", model, "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "i")],
         "no images in")
  _fails(capsys, ["index", "--model", str(root / "run"), "--images", str(root / "gallery"), "--out",
                  str(tmp_path / "i")], "is a training run: export it first")
  _fails(capsys, ["query", "--index", str(root / "gallery"), "--image", query], "is not an index")
  (tmp_path / "file").write_text("")
  _fails(capsys, ["index", "--model", model, "--images", str(root / "gallery"), "--out", str(tmp_path / "file")],
         "FileExistsError")
