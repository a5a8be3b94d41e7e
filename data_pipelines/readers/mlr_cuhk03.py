"""MLR-CUHK03: CUHK03 with one camera's images down-sampled.

Every image of camera `lr_camera` gets a scale drawn (seeded) from `scales`;
the pipeline down-samples it by that factor (`source` names the photo). The
'cross_resolution' task queries the low-resolution test images against the
full-resolution images of the other camera.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Sequence

from data_pipelines.readers import common
from data_pipelines.readers import market_style
from data_pipelines.records import Record, ReIDData


def read_mlr_cuhk03(root: str, variant: str = "labeled", lr_camera: int = 1,
                    scales: Sequence[int] = (2, 3, 4), seed: int = 0
                    ) -> ReIDData:
  """Reads CUHK03-NP (`variant`) and marks camera `lr_camera` low-resolution."""
  cuhk03 = market_style.read_cuhk03(root, variant)
  rng = random.Random(seed)

  def degrade(records: Sequence[Record]) -> list[Record]:
    return [dataclasses.replace(r, scale=rng.choice(scales), source=r.path)
            if r.camid == lr_camera else r for r in records]

  standard = cuhk03.tasks["standard"]
  test = degrade([*standard.query, *standard.gallery])
  name = f"mlr_cuhk03_{variant}"
  return ReIDData(
      name=name, train=degrade(cuhk03.train),
      tasks={"cross_resolution": common.make_task(
          name, "cross_resolution", "cross_resolution",
          [r for r in test if r.camid == lr_camera],
          [r for r in test if r.camid != lr_camera])})
