"""One entry point from a config's `data` section to a ReIDData."""

from __future__ import annotations

from ml_collections import ConfigDict

from data_pipelines.records import ReIDData


def load_data(data: ConfigDict, seed: int = 0) -> ReIDData:
  """The synthetic set (data.name == 'synthetic') or a real dataset from data.root, read with the reader
  options data.options ('key=value' strings; absent from configs written before they existed)."""
  options = tuple(data.get("options", ()))
  if data.name == "synthetic":
    if options:
      raise ValueError(f"data.options {options} are a real dataset's reader options; the synthetic set has "
                       "data.size and data.root")
    from data_pipelines import synthetic
    return synthetic.load(root=data.root or None, size=data.size, seed=seed)
  from data_pipelines.readers import registry
  return registry.load_dataset(data.name, data.root, **registry.parse_options(options))


def training_records(data: ReIDData, modalities) -> list:
  """The training records whose modality the config trains on (e.g. no clothes templates)."""
  records = [r for r in data.train if r.modality in tuple(modalities)]
  if not records:
    raise ValueError(f"{data.name} has no training images of modalities {tuple(modalities)}")
  return records


def run_training_records(config) -> list:
  """The records a run of `config` trains on (as `jreid.main` selects them): its data, its train_modalities."""
  return training_records(load_data(config.data, config.seed), config.data.train_modalities)
