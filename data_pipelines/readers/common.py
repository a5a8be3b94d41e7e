"""What every dataset reader shares: root checks, listing, relabelling."""

from __future__ import annotations

import dataclasses
import pathlib
import random
import re
from typing import Hashable, Iterable, Sequence, TypeVar

from data_pipelines.records import EvalTask, Record

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

Key = TypeVar("Key", bound=Hashable)


class DatasetNotFoundError(FileNotFoundError):
  """A dataset root is missing or does not have the expected layout."""


def locate(root: str | pathlib.Path, required: Sequence[str],
           subdirs: Sequence[str] = ()) -> pathlib.Path | None:
  """Returns `root` or the first `root/<subdir>` with every required entry."""
  root = pathlib.Path(root).expanduser()
  for candidate in [root, *(root / s for s in subdirs)]:
    if all((candidate / entry).exists() for entry in required):
      return candidate
  return None


def not_found(title: str, root: str | pathlib.Path, required: Sequence[str],
              layout: str) -> DatasetNotFoundError:
  """An error naming the dataset, what is missing and the expected layout."""
  root = pathlib.Path(root).expanduser()
  if root.is_dir():
    missing = [entry for entry in required if not (root / entry).exists()]
    problem = f"root {str(root)!r} lacks {', '.join(missing)}"
  else:
    problem = f"root {str(root)!r} does not exist"
  return DatasetNotFoundError(
      f"{title}: {problem}. Expected layout:\n{layout}")


def find_root(title: str, root: str | pathlib.Path, required: Sequence[str],
              layout: str, subdirs: Sequence[str] = ()) -> pathlib.Path:
  """Like `locate`, but raises DatasetNotFoundError when nothing fits."""
  found = locate(root, required, subdirs)
  if found is None:
    raise not_found(title, root, required, layout)
  return found


def list_images(directory: pathlib.Path) -> list[pathlib.Path]:
  """Image files directly in `directory`, sorted by name."""
  return sorted(p for p in directory.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES)


def read_lines(path: pathlib.Path) -> list[str]:
  """Non-blank lines of a text file, stripped."""
  return [line.strip() for line in path.read_text().splitlines()
          if line.strip()]


def read_rows(path: pathlib.Path, count: int) -> list[list[str]]:
  """Rows of a list file, `count` space (or comma) separated fields each."""
  rows = [re.split(r"[,\s]+", line) for line in read_lines(path)]
  for number, row in enumerate(rows, 1):
    if len(row) != count:
      raise ValueError(f"{path}:{number}: expected {count} fields, got {row}")
  return rows


def read_id_list(path: pathlib.Path) -> list[int]:
  """Identities of a comma (or space) separated id file such as SYSU's."""
  return [int(token) for token in re.split(r"[,\s]+", path.read_text())
          if token]


def parse_name(pattern: re.Pattern[str], path: pathlib.Path) -> re.Match[str]:
  """Matches a file name to the dataset's naming scheme, or says why not."""
  match = pattern.search(path.name)
  if match is None:
    raise ValueError(
        f"{path}: file name does not follow the pattern {pattern.pattern!r}")
  return match


def dense_index(keys: Iterable[Key]) -> dict[Key, int]:
  """Maps each distinct key to 0..N-1 in sorted order."""
  return {key: i for i, key in enumerate(sorted(set(keys)))}


def relabel(records: Sequence[Record]) -> list[Record]:
  """Maps pids, and clothes ids where known, to 0..N-1 in sorted order.

  The dataset's own identity stays in `orig_pid`.
  """
  pids = dense_index(r.pid for r in records)
  clothes = dense_index(r.clothes_id for r in records if r.clothes_id >= 0)
  return [dataclasses.replace(r, pid=pids[r.pid],
                              clothes_id=clothes.get(r.clothes_id, -1))
          for r in records]


def sample_gallery(records: Sequence[Record], seed: int) -> list[Record]:
  """Draws one record per (pid, camera), seeded: one trial's gallery."""
  rng = random.Random(seed)
  groups: dict[tuple[int, int], list[Record]] = {}
  for record in records:
    groups.setdefault((record.pid, record.camid), []).append(record)
  return [rng.choice(groups[key]) for key in sorted(groups)]


def make_task(dataset: str, key: str, protocol: str, query: Sequence[Record],
              gallery: Sequence[Record], query_kind: str = "image") -> EvalTask:
  """An evaluation task named '<dataset>_<key>'."""
  return EvalTask(name=f"{dataset}_{key}", protocol=protocol,
                  query_kind=query_kind, query=tuple(query),
                  gallery=tuple(gallery))
