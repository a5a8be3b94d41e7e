"""Dataset readers by name: configs name a dataset, its root and options."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Callable, Sequence

from data_pipelines.readers import clothes_changing
from data_pipelines.readers import cocas
from data_pipelines.readers import llcm
from data_pipelines.readers import market_style
from data_pipelines.readers import mlr_cuhk03
from data_pipelines.readers import msmt17
from data_pipelines.readers import pedes
from data_pipelines.readers import regdb
from data_pipelines.readers import sysu_mm01
from data_pipelines.records import ReIDData


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """A reader and what it expects on disk.

  read: (root, **options) -> ReIDData. layout: the expected folder tree.
  has_train: False for evaluation-only sets (an empty train split is fine).
  has_tasks: False for training-only sets.
  """

  name: str
  read: Callable[..., ReIDData]
  layout: str
  has_train: bool = True
  has_tasks: bool = True


_SPECS = {spec.name: spec for spec in (
    DatasetSpec("market1501", market_style.read_market1501,
                market_style.MARKET1501_LAYOUT),
    DatasetSpec("dukemtmc", market_style.read_dukemtmc,
                market_style.DUKEMTMC_LAYOUT),
    DatasetSpec("msmt17", msmt17.read_msmt17, msmt17.LAYOUT),
    DatasetSpec("cuhk03", market_style.read_cuhk03,
                market_style.CUHK03_LAYOUT),
    DatasetSpec("mlr_cuhk03", mlr_cuhk03.read_mlr_cuhk03,
                market_style.CUHK03_LAYOUT),
    DatasetSpec("sysu_mm01", sysu_mm01.read_sysu_mm01, sysu_mm01.LAYOUT),
    DatasetSpec("regdb", regdb.read_regdb, regdb.LAYOUT),
    DatasetSpec("llcm", llcm.read_llcm, llcm.LAYOUT),
    DatasetSpec("ltcc", clothes_changing.read_ltcc,
                clothes_changing.LTCC_LAYOUT),
    DatasetSpec("prcc", clothes_changing.read_prcc,
                clothes_changing.PRCC_LAYOUT),
    DatasetSpec("vc_clothes", clothes_changing.read_vc_clothes,
                clothes_changing.VC_CLOTHES_LAYOUT),
    DatasetSpec("cuhk_pedes", pedes.read_cuhk_pedes, pedes.CUHK_PEDES_LAYOUT),
    DatasetSpec("icfg_pedes", pedes.read_icfg_pedes, pedes.ICFG_PEDES_LAYOUT),
    DatasetSpec("rstpreid", pedes.read_rstpreid, pedes.RSTPREID_LAYOUT),
    DatasetSpec("cocas_real2", cocas.read_cocas_real2, cocas.REAL2_LAYOUT,
                has_train=False),
    DatasetSpec("cocas_synthetic", cocas.read_cocas_synthetic,
                cocas.SYNTHETIC_LAYOUT, has_tasks=False),
)}


def list_datasets() -> list[str]:
  """Names of every registered dataset, sorted."""
  return sorted(_SPECS)


def get_spec(name: str) -> DatasetSpec:
  """The registered spec of dataset `name`."""
  try:
    return _SPECS[name]
  except KeyError:
    raise KeyError(f"unknown dataset {name!r}; known: "
                   f"{', '.join(list_datasets())}") from None


def get_reader(name: str) -> Callable[..., ReIDData]:
  """The reader of dataset `name`: (root, **options) -> ReIDData."""
  return get_spec(name).read


def load_dataset(name: str, root: str, **options) -> ReIDData:
  """Reads dataset `name` from `root` with the reader's `options` (an option it lacks: ValueError)."""
  reader = get_reader(name)
  accepted = list(inspect.signature(reader).parameters)[1:]
  unknown = sorted(set(options) - set(accepted))
  if unknown:
    raise ValueError(f"{name} has no reader option {', '.join(unknown)}; its options: "
                     f"{', '.join(accepted) or 'none'}")
  return reader(root, **options)


def parse_options(texts: Sequence[str]) -> dict[str, object]:
  """Reader options from 'key=value' strings ('trial=2', 'variant=detected').

  Values are Python literals where they parse as one, else strings.
  """
  options = {}
  for text in texts:
    key, sep, value = text.partition("=")
    if not sep or not key:
      raise ValueError(f"reader option {text!r} is not of the form key=value")
    try:
      options[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      options[key] = value
  return options
