"""Unlabeled image corpora for pretraining: the synthetic generator's people, or any folder of person images.

Nothing here returns an identity label: a corpus is a tuple of `CorpusImage`
(an image file and its captions, possibly none).

The synthetic corpus draws its people from a seed namespace of its own
(`corpus_identity`), disjoint from every evaluation seed of
`data_pipelines.synthetic`, and renders its camera scenes from their own seeds
too. It is rendered in shards of `shard_size` identities, in parallel, each
written to a temporary folder renamed into place, under
`<base>/corpus-<seed>-<hash>/` (base: the `root` argument, else
`$JREID_DATA_DIR/synthetic`, else `~/.cache/jreid/synthetic`). A larger
`num_ids` reuses the shards already there. Within a shard the images are
shuffled and numbered, so neither order nor file name tells who is who.
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

import numpy as np
from PIL import Image
from tqdm import tqdm

from data_pipelines.synthetic import captions, identities, render
from data_pipelines.synthetic.cameras import CAMERAS, VISIBLE_CAMERAS

# Last word of every random key of the corpus. The generator's keys for a seed's identities,
# [seed, 1, pid], equal [seed, 1, pid, 0] to numpy's SeedSequence, so a nonzero last word keeps them apart.
NAMESPACE = 0x636F7270
SHARD_MANIFEST = "images.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class CorpusImage:
  """An image file of an unlabeled corpus and its captions (empty when it has none)."""

  path: str
  captions: tuple[str, ...] = ()


def corpus_identity(seed: int, pid: int) -> identities.Identity:
  """Person `pid` of the synthetic corpus of `seed` (its outfits numbered from clothes id 0)."""
  return identities.sample_identity(np.random.default_rng([seed, 1, pid, NAMESPACE]), pid, 0)


@dataclasses.dataclass(frozen=True)
class _Shard:
  seed: int
  start: int
  stop: int
  photos_per_outfit: int
  captions_per_image: int
  directory: str


def _render_shard(shard: _Shard) -> None:
  """Renders the visible photos of identities [start, stop) with captions into shard.directory, shuffled."""
  people = [corpus_identity(shard.seed, pid) for pid in range(shard.start, shard.stop)]
  count = sum(len(who.outfits) for who in people) * shard.photos_per_outfit
  positions = iter(np.random.default_rng([shard.seed, 5, shard.start, NAMESPACE]).permutation(count))
  manifest = [{}] * count
  scratch = tempfile.mkdtemp(prefix=f".{os.path.basename(shard.directory)}-", dir=os.path.dirname(shard.directory))
  try:
    for who in people:
      for o, outfit in enumerate(who.outfits):
        cams = np.random.default_rng([shard.seed, 2, who.pid, o, NAMESPACE]).choice(
            VISIBLE_CAMERAS, size=min(3, shard.photos_per_outfit), replace=False)
        for j in range(shard.photos_per_outfit):
          rng = np.random.default_rng([shard.seed, 3, who.pid, o, j, NAMESPACE])
          image, _, view = render.photo(who, outfit, CAMERAS[int(cams[j % len(cams)])], NAMESPACE + shard.seed, rng)
          position = int(next(positions))
          Image.fromarray(image).save(os.path.join(scratch, f"{position:06d}.png"), compress_level=1)
          manifest[position] = {"path": f"{position:06d}.png",
                                "captions": list(captions.captions(who, outfit, view, shard.captions_per_image, rng))}
    with open(os.path.join(scratch, SHARD_MANIFEST), "w") as f:
      json.dump(manifest, f, indent=0)
    try:
      os.rename(scratch, shard.directory)
    except OSError:  # Another process finished the same shard first.
      if not os.path.exists(os.path.join(shard.directory, SHARD_MANIFEST)):
        raise
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def corpus_dir(root: str | None, seed: int, photos_per_outfit: int, captions_per_image: int, shard_size: int) -> str:
  """Where the shards of this corpus configuration (any size) are cached."""
  if root:
    base = root
  elif os.environ.get("JREID_DATA_DIR"):
    base = os.path.join(os.environ["JREID_DATA_DIR"], "synthetic")
  else:
    base = os.path.expanduser("~/.cache/jreid/synthetic")
  digest = hashlib.sha256()
  for path in sorted(pathlib.Path(render.__file__).parent.glob("*.py")) + [pathlib.Path(__file__)]:
    digest.update(path.read_bytes())  # The generator's code and this file's: a change of either re-renders.
  digest.update(json.dumps([photos_per_outfit, captions_per_image, shard_size]).encode())
  return os.path.join(base, f"corpus-{seed}-{digest.hexdigest()[:10]}")


def synthetic_corpus(num_ids: int, seed: int = 0, root: str | None = None, num_workers: int | None = None, *,
                     photos_per_outfit: int = 4, captions_per_image: int = 3,
                     shard_size: int = 250) -> tuple[CorpusImage, ...]:
  """The visible photos (1-3 outfits, `photos_per_outfit` each) of `num_ids` corpus identities, with captions.

  Missing shards are rendered by `num_workers` spawned processes (default: all
  cores), so a script that generates must call this under
  `if __name__ == "__main__":`.
  """
  if num_ids < 1 or shard_size < 1 or photos_per_outfit < 1:
    raise ValueError(f"num_ids, shard_size and photos_per_outfit must be positive; got {num_ids}, {shard_size}, "
                     f"{photos_per_outfit}")
  directory = corpus_dir(root, seed, photos_per_outfit, captions_per_image, shard_size)
  os.makedirs(directory, exist_ok=True)
  shards = [_Shard(seed, start, min(start + shard_size, num_ids), photos_per_outfit, captions_per_image,
                   os.path.join(directory, f"shard-{start:07d}-{min(start + shard_size, num_ids):07d}"))
            for start in range(0, num_ids, shard_size)]
  missing = [s for s in shards if not os.path.exists(os.path.join(s.directory, SHARD_MANIFEST))]
  if missing:
    workers = min(num_workers or os.cpu_count() or 1, len(missing))
    progress = tqdm(total=len(missing), desc=f"synthetic corpus {seed} ({num_ids} ids)", unit="shard")
    with progress:
      if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
          for _ in pool.imap_unordered(_render_shard, missing):
            progress.update()
      else:
        for shard in missing:
          _render_shard(shard)
          progress.update()
  out = []
  for shard in shards:
    with open(os.path.join(shard.directory, SHARD_MANIFEST)) as f:
      out += [CorpusImage(os.path.join(shard.directory, e["path"]), tuple(e["captions"])) for e in json.load(f)]
  return tuple(out)


def folder_corpus(root: str, captions_json: str | None = None) -> tuple[CorpusImage, ...]:
  """Every image under `root` (searched recursively, in path order), with captions from a CUHK-PEDES-style JSON.

  The JSON lists {'file_path' (or 'img_path'): path relative to root, 'captions': [...]};
  its other keys ('id', 'split') are not read.

  Raises:
    FileNotFoundError: root holds no image.
    ValueError: the JSON names no image found under root (it belongs to another folder).
  """
  base = pathlib.Path(root)
  paths = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
  if not paths:
    raise FileNotFoundError(f"no image ({', '.join(IMAGE_SUFFIXES)}) found under {root!r}")
  texts = {}
  if captions_json:
    for entry in json.loads(pathlib.Path(captions_json).read_text()):
      key = pathlib.PurePosixPath(entry.get("file_path") or entry["img_path"]).as_posix()
      texts[key] = texts.get(key, ()) + tuple(c.strip() for c in entry["captions"])
    relative = {p.relative_to(base).as_posix() for p in paths}
    if texts and not relative & set(texts):
      raise ValueError(f"{captions_json} names no image under {root!r} (e.g. {next(iter(texts))!r}): its paths "
                       "are relative to another folder")
  return tuple(CorpusImage(str(p), texts.get(p.relative_to(base).as_posix(), ())) for p in paths)

