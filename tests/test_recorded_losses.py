"""Every method's training losses over the first 5 steps of its smoke preset equal values recorded at main bfffb85.

A structural change of the trainer or the methods must not change what they
compute. The towers are pinned here to the smoke presets' values of that
commit, so that a later change of a preset's tower default does not move these
numbers; so are the gradient clipping of that commit's recipe (none) and ITKM's image-encoder learning
rate of that commit (3.5e-4, now 3.5e-5). A change
of the towers' code, the data or the loss does move them, and then the values
are recorded again (`JREID_RECORD_LOSSES=1 pytest -s` prints them).
"""

import importlib
import os

import numpy as np
import pytest
from ml_collections import ConfigDict

from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.train import loop

STEPS = 5
# The smoke presets' towers at bfffb85 (configs/image_reid.py, instruct.py, unireid.py, itkm.py).
_VISION = dict(image_size=(64, 32), patch_size=16, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=32,
               dtype="float32", param_dtype="float32", stem="patch", stem_width=32, stem_blocks=0, pool="token")
_INSTRUCT_TOWERS = dict(
    vision=_VISION,
    text=dict(vocab_size=600, context_length=48, width=32, layers=1, heads=2, mlp_dim=64),
    template=dict(image_size=(64, 32), patch_size=16, width=32, layers=1, heads=2, mlp_dim=64))
TOWERS = {
    "image_reid": dict(vision=_VISION),
    "instruct": _INSTRUCT_TOWERS,
    "unified": _INSTRUCT_TOWERS,  # unified.py sets template.shared on top
    "smoke": _INSTRUCT_TOWERS,  # configs/smoke.py is unified.py:smoke
    "unireid": dict(vision=_VISION, text=dict(vocab_size=600, context_length=48, width=32, layers=1, heads=2,
                                              mlp_dim=64, embed_dim=32)),
    "itkm": dict(vision=_VISION, text=dict(vocab_size=600, context_length=24, width=32, layers=1, heads=2,
                                           mlp_dim=64)),
}
# The loss of steps 1..5, recorded at bfffb85 on a CPU (jax 0.10.2).
RECORDED = {
    "image_reid": [4.682539939880371, 4.586211204528809, 3.3588130474090576, 3.750739574432373, 3.7200675010681152],
    "instruct": [4.619575500488281, 6.318754196166992, 6.233015060424805, 5.275840759277344, 4.88282585144043],
    "itkm": [0.008831601589918137, 0.0009457780397497118, 17.010709762573242, 15.502664566040039, 12.539874076843262],
    "smoke": [7.022433280944824, 6.941092491149902, 9.353519439697266, 6.770036220550537, 5.587725639343262],
    "unified": [7.022433280944824, 6.941092491149902, 9.353519439697266, 6.770036220550537, 5.587725639343262],
    "unireid": [13.059026718139648, 10.848358154296875, 10.796893119812012, 12.590238571166992, 12.009042739868164],
}


def smoke_config(name: str) -> ConfigDict:
  """configs/<name>.py's smoke preset with the towers of TOWERS[name]."""
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config() if name == "smoke" else module.get_config("smoke")
  for tower, values in TOWERS[name].items():
    kept = {k: v for k, v in config.model[tower].items() if k not in values}  # e.g. template.shared
    config.model[tower] = ConfigDict({**values, **kept})
  config.optim.grad_clip = 0.0  # bfffb85's recipe
  if name == "itkm":
    config.optim.update(lr=3.5e-4, warmup_init_lr=3.5e-6, min_lr=1e-6)  # bfffb85's image-encoder schedule
  return config


def first_losses(config: ConfigDict, workdir: str) -> list[float]:
  """The loss of steps 1..STEPS of a fresh run of `config`, as `python -m jreid.main` trains it."""
  data = load_data(config.data, config.seed)
  records = training_records(data, config.data.train_modalities)
  method = methods.build(config, data.num_train_ids, records)
  _, history = loop.train(config, workdir, method, show_progress=False, stop_at=STEPS)
  return [history[step]["loss"] for step in range(1, STEPS + 1)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A fresh JREID_DATA_DIR (the synthetic set and the tokenizers are made again, as on a new machine)."""
  previous = os.environ.get("JREID_DATA_DIR")
  os.environ["JREID_DATA_DIR"] = str(tmp_path_factory.mktemp("jreid_data"))
  yield
  if previous is None:
    del os.environ["JREID_DATA_DIR"]
  else:
    os.environ["JREID_DATA_DIR"] = previous


@pytest.mark.parametrize("name", sorted(TOWERS))
def test_losses_equal_the_recorded_ones(name, data_dir, tmp_path):
  losses = first_losses(smoke_config(name), str(tmp_path))
  if os.environ.get("JREID_RECORD_LOSSES"):
    print(f"\n    {name!r}: {losses!r},")
    return
  np.testing.assert_allclose(losses, RECORDED[name], rtol=1e-5, err_msg=name)
