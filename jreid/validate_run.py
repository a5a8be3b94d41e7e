"""The run config checked against its data before the first training step: each mismatch is one ValueError.

Checked: the training modalities (config.data.train_modalities; those the
data lacks are named in one line, none at all is an error), every
config.data.balance_modalities entry among them, P (config.data.num_ids)
against the training identities (for a Method that is `labelled`), and
captions for one that `needs_captions`. The evaluation tasks are checked by
jreid.eval.tasks.task_names.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ml_collections import ConfigDict

from data_pipelines.records import Record


def validate_run(config: ConfigDict, name: str, train: Sequence[Record], method: type) -> list[Record]:
  """The training records of `config` among dataset `name`'s training split `train`, for the Method subclass
  `method`; raises ValueError on a mismatch (see the module)."""
  data = config.data
  counts = Counter(r.modality for r in train)
  wanted = tuple(data.train_modalities)
  present = tuple(m for m in wanted if counts[m])
  if not present:
    raise ValueError(f"config.data.train_modalities is {wanted}, but {name}'s training images are "
                     f"{_listed(counts)}")
  if len(present) < len(wanted):
    print(f"data: {name} has no {', '.join(m for m in wanted if not counts[m])} training images; training on "
          f"{', '.join(present)}")
  records = [r for r in train if r.modality in present]
  missing = [m for m in data.balance_modalities if m not in present]
  if missing:
    raise ValueError(f"config.data.balance_modalities names {', '.join(map(repr, missing))}, but {name} has no "
                     f"such training images among config.data.train_modalities (it has {', '.join(present)}); "
                     f"set config.data.balance_modalities=()")
  identities = len({r.pid for r in records})
  if method.labelled and data.num_ids > identities:
    raise ValueError(f"config.data.num_ids={data.num_ids} identities per batch, but {name} has only "
                     f"{identities} training identities; lower config.data.num_ids")
  if method.needs_captions and not any(r.captions for r in records):
    raise ValueError(f"config.method={config.method!r} trains on captions, but no training image of {name} "
                     f"has one; use captioned data (cuhk_pedes, icfg_pedes, rstpreid, synthetic) or "
                     f"configs/image_reid.py")
  return records


def _listed(counts: Counter) -> str:
  return ", ".join(f"{count} {modality}" for modality, count in sorted(counts.items())) or "none"
