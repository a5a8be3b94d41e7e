"""Search a folder of person images with an exported model.

    python -m jreid.search index --model MODEL --images FOLDER --out INDEX
    python -m jreid.search query --index INDEX --image Q.jpg [--instruction "Ignore clothes."]
    python -m jreid.search query --index INDEX --text "a woman in a red coat" [--sketch S.png]
    python -m jreid.search query --index INDEX --queries QUERIES.jsonl

`index` encodes every image under FOLDER (recursively) into feature shards
under INDEX, leaving out unreadable images (a warning line each, their count
at the end); run the same command again to finish an interrupted index.
`query` prints each query's top-k gallery images with their cosine scores and
draws them in a picture. A query is an --image, a --sketch, a --text, or a
combination the model encodes (image + instruction, image + template, text +
sketch); a --queries file holds one JSON object per line with the same keys,
paths relative to the file.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import textwrap
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from data_pipelines.images import ImageError, decode_image
from data_pipelines.records import Record
from jreid import cli, inference
from jreid.progress import Progress

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
INDEX_FORMAT = "jreid-index"
INDEX_FILE = "index.json"
PATHS_FILE = "paths.json"
# Query fields given -> the query kind they make.
QUERY_KINDS = {
    frozenset({"image"}): "image",
    frozenset({"sketch"}): "sketch",
    frozenset({"text"}): "text",
    frozenset({"text", "sketch"}): "text+sketch",
    frozenset({"image", "instruction"}): "image+instruction",
    frozenset({"image", "template"}): "image+template",
}
QUERY_FIELDS = ("image", "sketch", "template", "text", "instruction")
_IMAGE_FIELDS = ("image", "sketch", "template")
THUMB = (64, 128)  # (width, height) of a picture tile
GAP = 4


class SearchError(Exception):
  """Bad input: the message says what is wrong and what was expected."""


def _check_image_path(path: str, what: str) -> None:
  if not os.path.isfile(path):
    raise SearchError(f"{what} {path!r} does not exist")
  if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
    raise SearchError(f"{what} {path!r} has an unknown image format; supported: {' '.join(IMAGE_EXTENSIONS)}")


def list_images(folder: str) -> tuple[list[str], list[str]]:
  """(image paths, other files) under folder, relative to it and sorted."""
  if not os.path.isdir(folder):
    raise SearchError(f"--images {folder!r} is not a folder")
  images, others = [], []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      relative = os.path.relpath(os.path.join(root, name), folder)
      (images if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS else others).append(relative)
  return images, others


def _shard_path(index_dir: str, shard: int) -> str:
  return os.path.join(index_dir, f"features-{shard:05d}.npz")


def _write_json(path: str, value: Any) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(value, f, indent=2)
  os.replace(path + ".tmp", path)


def _load_model(directory: str, batch_size: int) -> inference.Encoder:
  try:
    return inference.load(directory, batch_size)
  except (FileNotFoundError, ValueError) as e:
    raise SearchError(f"--model: {e}") from e


def _unreadable(paths: Sequence[str]) -> dict[str, str]:
  """path -> why, of the images that PIL cannot decode (a full decode, at a small size)."""
  bad = {}
  for path in paths:
    try:
      decode_image(path, (32, 16))
    except ImageError as error:
      bad[path] = str(error)
  return bad


def _encode_shard(encoder: inference.Encoder, chunk: Sequence[str], progress: Progress) -> tuple[np.ndarray, np.ndarray]:
  """(features of the readable images, readable mask [len(chunk)]) of one shard's image paths.

  An unreadable image is reported on one line and left out: the first one the
  model meets makes every image of the shard be checked, and the shard encoded again without them.
  """
  skipped: set[str] = set()
  start = progress.n
  while True:
    kept = [p for p in chunk if p not in skipped]
    try:
      features = encoder.encode_images(kept, on_chunk=progress.update) if kept else np.zeros((0, 0), np.float32)
      break
    except ImageError as error:
      if error.path not in kept:
        raise
      bad = _unreadable(kept) or {error.path: str(error)}
      for why in bad.values():
        progress.write(f"warning: skipping an unreadable image: {why}", file=sys.stderr)
      skipped.update(bad)
      progress.update(start - progress.n)
  progress.update(start + len(chunk) - progress.n)
  return features, np.array([p not in skipped for p in chunk])


def _start_index(index_dir: str, meta: dict[str, Any], paths: list[str]) -> None:
  """Writes index.json and paths.json into index_dir, unless they are there for the same images and model.

  An interrupted index of other images or another model starts again; a complete one is refused.
  """
  meta_path, paths_path = os.path.join(index_dir, INDEX_FILE), os.path.join(index_dir, PATHS_FILE)
  if os.path.isfile(meta_path):
    with open(meta_path) as f, open(paths_path) as g:
      old_meta, old_paths = json.load(f), json.load(g)
    if old_meta == meta and old_paths == paths:
      return
    shards = [_shard_path(index_dir, s) for s in range(-(-len(old_paths) // old_meta["shard_size"]))]
    if old_meta.get("format") != INDEX_FORMAT or all(os.path.isfile(s) for s in shards):
      raise SearchError(f"{index_dir!r} holds an index of other images, or of another model or shard size: "
                        "remove it or choose another --out")
    print(f"the interrupted index in {index_dir} is of other images or another model: starting it again")
    os.remove(meta_path)
    for shard in shards:
      if os.path.isfile(shard):
        os.remove(shard)
  elif os.path.isdir(index_dir) and {n for n in os.listdir(index_dir) if not n.endswith(".tmp")} - {PATHS_FILE}:
    raise SearchError(f"--out {index_dir!r} exists and holds no index: choose an empty or new folder")
  os.makedirs(index_dir, exist_ok=True)
  _write_json(paths_path, paths)
  _write_json(meta_path, meta)  # Last: an index.json means paths.json is complete.


def build_index(encoder: inference.Encoder, folder: str, index_dir: str, shard_size: int = 4096,
                show_progress: bool = True) -> dict[str, Any]:
  """Encodes the images under folder into feature shards in index_dir, skipping shards already written.

  Unreadable images are left out of the index with a warning line each;
  `num_skipped` in the returned index.json dict counts them (over every shard, earlier runs' included).
  """
  folder, index_dir = os.path.abspath(folder), os.path.abspath(index_dir)
  paths, others = list_images(folder)
  if not paths:
    raise SearchError(f"no images in {folder!r} (looked for {' '.join(IMAGE_EXTENSIONS)})")
  if others:
    print(f"skipping {len(others)} files that are not images, e.g. {others[0]}")
  meta = {"format": INDEX_FORMAT, "model": encoder.directory, "model_fingerprint": encoder.fingerprint,
          "images": folder, "num_images": len(paths), "shard_size": shard_size}
  _start_index(index_dir, meta, paths)
  shards = range(-(-len(paths) // shard_size))
  todo = [s for s in shards if not os.path.isfile(_shard_path(index_dir, s))]
  done = len(paths) - sum(len(paths[s * shard_size:(s + 1) * shard_size]) for s in todo)
  if done:
    print(f"resuming: {done} of {len(paths)} images already indexed")
  with Progress(len(paths), "index", "img", initial=done, enabled=show_progress) as progress:
    for shard in todo:
      chunk = [os.path.join(folder, p) for p in paths[shard * shard_size:(shard + 1) * shard_size]]
      features, readable = _encode_shard(encoder, chunk, progress)
      target = _shard_path(index_dir, shard)
      with open(target + ".tmp", "wb") as f:
        np.savez(f, features=features, readable=readable)
      os.replace(target + ".tmp", target)
  return {**meta, "num_skipped": int(sum((~_readable(index_dir, s)).sum() for s in shards))}


def _readable(index_dir: str, shard: int) -> np.ndarray:
  with np.load(_shard_path(index_dir, shard)) as data:
    return data["readable"]


def read_index(index_dir: str) -> tuple[dict[str, Any], list[str]]:
  """(index.json, image paths) of a complete index."""
  meta_path = os.path.join(index_dir, INDEX_FILE)
  if not os.path.isfile(meta_path):
    raise SearchError(f"{index_dir!r} is not an index: expected {INDEX_FILE} there, as "
                      "`python -m jreid.search index --out DIR` writes it")
  with open(meta_path) as f, open(os.path.join(index_dir, PATHS_FILE)) as g:
    meta, paths = json.load(f), json.load(g)
  missing = [s for s in range(-(-len(paths) // meta["shard_size"])) if not os.path.isfile(_shard_path(index_dir, s))]
  if missing:
    raise SearchError(f"the index {index_dir!r} is incomplete ({len(missing)} shards missing): run the same "
                      "`python -m jreid.search index` command again to finish it")
  return meta, paths


@functools.partial(jax.jit, static_argnames="k")
def _shard_topk(queries: jax.Array, shard: jax.Array, num_valid: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  scores = queries @ shard.T
  scores = jnp.where(jnp.arange(shard.shape[0]) < num_valid, scores, -jnp.inf)
  return jax.lax.top_k(scores, k)


def search(index_dir: str, meta: dict[str, Any], queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """(scores, gallery indices into paths.json) [Q, k] best first: per-shard top-k on the device, merged on the host.

  Images skipped as unreadable are never returned; k is at most the number of indexed images.
  """
  size = meta["shard_size"]
  shards = range(-(-meta["num_images"] // size))
  k = min(k, int(sum(_readable(index_dir, s).sum() for s in shards)))
  scores, indices = [], []
  for shard in shards:
    with np.load(_shard_path(index_dir, shard)) as data:
      features, positions = data["features"], np.flatnonzero(data["readable"]) + shard * size
    if not len(features):
      continue
    padded = np.zeros((size, features.shape[1]), np.float32)
    padded[:len(features)] = features
    s, i = _shard_topk(queries, padded, len(features), k=min(k, size))
    scores.append(np.asarray(s))
    indices.append(positions[np.minimum(np.asarray(i), len(features) - 1)])  # Padding rows score -inf.
  scores, indices = np.concatenate(scores, 1), np.concatenate(indices, 1)
  order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # Ties: the lower gallery index first.
  return np.take_along_axis(scores, order, 1), np.take_along_axis(indices, order, 1)


def query_kind(query: dict[str, str]) -> str:
  kind = QUERY_KINDS.get(frozenset(query))
  if kind is None:
    combos = ", ".join(" + ".join(f"--{f}" for f in sorted(c)) for c in QUERY_KINDS)
    raise SearchError(f"cannot make a query of {' + '.join('--' + f for f in sorted(query))}; queries are {combos}")
  return kind


def read_queries(path: str) -> list[dict[str, str]]:
  """The queries of a JSON-lines file; image paths are relative to the file."""
  if not os.path.isfile(path):
    raise SearchError(f"--queries {path!r} does not exist")
  base, queries = os.path.dirname(os.path.abspath(path)), []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip() or line.lstrip().startswith("#"):
        continue
      try:
        query = json.loads(line)
      except json.JSONDecodeError as e:
        raise SearchError(f"{path}:{number}: not a JSON object: {e}") from e
      if not isinstance(query, dict) or not set(query) <= set(QUERY_FIELDS) or not query:
        raise SearchError(f"{path}:{number}: expected an object with keys among {', '.join(QUERY_FIELDS)}")
      queries.append({k: os.path.join(base, v) if k in _IMAGE_FIELDS else v for k, v in query.items()})
  if not queries:
    raise SearchError(f"--queries {path!r} holds no queries")
  return queries


def query_record(query: dict[str, str]) -> Record:
  """The record a method encodes a query from (see data_pipelines.records.Record)."""
  return Record(path=query.get("image") or query.get("sketch", ""), pid=-1, camid=-1,
                modality="sketch" if "sketch" in query else "rgb",
                captions=(query["text"],) if "text" in query else (), instruction=query.get("instruction", ""),
                template=query.get("template", ""))


def encode_queries(encoder: inference.Encoder, queries: Sequence[dict[str, str]]) -> np.ndarray:
  """Features [Q, D] of the queries, encoded in one batched call per query kind."""
  kinds = [query_kind(q) for q in queries]
  for kind in sorted(set(kinds)):
    encoder.check_kind(kind)
  for query in queries:
    for field in _IMAGE_FIELDS:
      if field in query:
        _check_image_path(query[field], f"--{field}")
  features = [None] * len(queries)
  for kind in sorted(set(kinds)):
    rows = [i for i, k in enumerate(kinds) if k == kind]
    for row, feature in zip(rows, encoder.encode(kind, [query_record(queries[i]) for i in rows])):
      features[row] = feature
  return np.stack(features)


def _text_tile(text: str, size: tuple[int, int]) -> Image.Image:
  tile = Image.new("RGB", size, "white")
  draw, font = ImageDraw.Draw(tile), ImageFont.load_default()
  width = max(1, int(size[0] // max(font.getlength("n"), 1)))
  for row, line in enumerate(textwrap.wrap(text, width)[:size[1] // 12]):
    draw.text((2, 2 + 12 * row), line, fill="black", font=font)
  return tile


def _part_width(field: str) -> int:
  """Text tiles are two thumbnails wide."""
  return THUMB[0] * (2 if field in ("text", "instruction") else 1) + 2 * GAP


def _image_tile(path: str) -> Image.Image:
  with Image.open(path) as image:
    return image.convert("RGB").resize(THUMB)


def save_picture(path: str, queries: Sequence[dict[str, str]], scores: np.ndarray, gallery: Sequence[str]) -> None:
  """One row per query: its parts in grey frames, then its ranked gallery images with their scores."""
  parts = [[(f, q[f]) for f in QUERY_FIELDS if f in q] for q in queries]
  query_width = max(sum(_part_width(f) for f, _ in row) for row in parts)
  row_height = THUMB[1] + 2 * GAP + 14
  canvas = Image.new("RGB", (query_width + 3 * GAP + scores.shape[1] * (THUMB[0] + 2 * GAP), len(queries) * row_height),
                     "white")
  draw = ImageDraw.Draw(canvas)
  for row, query_parts in enumerate(parts):
    x, y = GAP, row * row_height + GAP
    for field, value in query_parts:
      if field in _IMAGE_FIELDS:
        tile = _image_tile(value)
      else:
        tile = _text_tile(value, (_part_width(field) - 2 * GAP, THUMB[1]))
      draw.rectangle((x - 2, y - 2, x + tile.size[0] + 1, y + tile.size[1] + 1), fill="grey")
      canvas.paste(tile, (x, y))
      x += _part_width(field)
    x = query_width + 3 * GAP
    for rank, (score, image) in enumerate(zip(scores[row], gallery[row])):
      canvas.paste(_image_tile(image), (x, y))
      draw.text((x, y + THUMB[1] + 2), f"{rank + 1}: {score:.4f}", fill="black")
      x += THUMB[0] + 2 * GAP
  canvas.save(path)


def _run_index(args: argparse.Namespace) -> None:
  encoder = _load_model(args.model, args.batch_size)
  meta = build_index(encoder, args.images, args.out, args.shard_size)
  print(f"indexed {meta['num_images'] - meta['num_skipped']} images of {meta['images']} into "
        f"{os.path.abspath(args.out)}; skipped {meta['num_skipped']} unreadable images")


def _run_query(args: argparse.Namespace) -> None:
  given = {f: getattr(args, f) for f in QUERY_FIELDS if getattr(args, f) is not None}
  if bool(given) == bool(args.queries):
    raise SearchError("give one query (--image, --sketch, --text, --instruction, --template) or --queries FILE")
  queries = read_queries(args.queries) if args.queries else [given]
  meta, paths = read_index(args.index)
  encoder = _load_model(args.model or meta["model"], args.batch_size)
  if encoder.fingerprint != meta["model_fingerprint"]:
    raise SearchError(f"the index {args.index!r} was built with the model {meta['model']}, not {encoder.directory}: "
                      "their features do not compare")
  scores, indices = search(args.index, meta, encode_queries(encoder, queries), args.topk)
  results = []
  for number, (query, row_scores, row_indices) in enumerate(zip(queries, scores, indices), 1):
    print(f"query {number} ({query_kind(query)}): " + ", ".join(f"{k}={v!r}" for k, v in query.items()))
    ranked = [{"path": paths[i], "score": float(s)} for s, i in zip(row_scores, row_indices)]
    for rank, item in enumerate(ranked, 1):
      print(f"  {rank:3d}  {item['score']:.4f}  {item['path']}")
    results.append({"query": query, "kind": query_kind(query), "results": ranked})
  gallery = [[os.path.join(meta["images"], paths[i]) for i in row] for row in indices]
  if args.picture:
    save_picture(args.picture, queries, scores, gallery)
    print(f"ranked-result picture: {os.path.abspath(args.picture)}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)


def _positive(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
  return value


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m jreid.search", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)
  index = commands.add_parser("index", help="encode a folder of images into an index")
  index.add_argument("--model", required=True, help="exported model directory (python -m jreid.convert export)")
  index.add_argument("--images", required=True, help="folder of gallery images (searched recursively)")
  index.add_argument("--out", required=True, help="index directory to write (or to finish)")
  index.add_argument("--shard-size", type=_positive, default=4096, help="images per feature shard (the resume unit)")
  index.set_defaults(run=_run_index)
  query = commands.add_parser("query", help="rank the indexed images for one or more queries")
  query.add_argument("--index", required=True, help="index directory")
  query.add_argument("--model", default=None, help="model directory (default: the one the index was built with)")
  query.add_argument("--image", help="query image")
  query.add_argument("--sketch", help="query sketch")
  query.add_argument("--template", help="clothes-template image (with --image)")
  query.add_argument("--text", help="query description")
  query.add_argument("--instruction", help="instruction (with --image), e.g. 'Ignore clothes.'")
  query.add_argument("--queries", help="JSON-lines file of queries, e.g. {\"image\": \"q.jpg\"} per line")
  query.add_argument("--topk", type=_positive, default=10, help="results per query")
  query.add_argument("--picture", default=None, help="ranked-result picture to write (PNG); none without it")
  query.add_argument("--json", help="also write the ranked lists to this JSON file")
  query.set_defaults(run=_run_query)
  for sub in (index, query):
    sub.add_argument("--batch-size", type=_positive, default=64, help="images per compiled batch")
  return parser


def main(argv: Sequence[str] | None = None) -> None:
  """Runs the command line; argv excludes the program name. Bad input exits with status 1 and one line (jreid.cli)."""
  args = build_parser().parse_args(argv)
  try:
    cli.guarded(lambda: args.run(args), (SearchError, ImageError))
  except KeyboardInterrupt:
    print("interrupted (an index resumes when the same command runs again)", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
  main(sys.argv[1:])
