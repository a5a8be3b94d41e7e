"""An export loads with jreid.load(DIR) alone: without its run, the converted CLIP or BERT, or training data.

For each method (and the towers it can start from), a run's checkpoint is
exported; the run and the converted weights are then deleted and
JREID_DATA_DIR points at an empty directory (which must stay empty: no
dataset is generated and no tokenizer trained there). The loaded model must
give the features the method gave on the run's state, for every query kind.
"""

import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jreid
from configs import image_reid as image_reid_config
from configs import instruct as instruct_config
from configs import itkm as itkm_config
from configs import unified as unified_config
from configs import unireid as unireid_config
from data_pipelines import synthetic
from data_pipelines.datasets import training_records
from jreid import convert, inference, methods
from jreid.train import loop
from jreid.train.checkpoint import Checkpointer
from tiny_weights import tiny_bert, tiny_clip

BATCH = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_synthetic):
  directory = str(tmp_path_factory.mktemp("jreid_data"))
  shutil.copytree(tiny_synthetic, os.path.join(directory, "synthetic"))  # the session's tiny set (conftest.py)
  previous = os.environ.get("JREID_DATA_DIR")
  os.environ["JREID_DATA_DIR"] = directory
  yield synthetic.load(size="tiny", seed=0, num_workers=1)
  if previous is None:
    del os.environ["JREID_DATA_DIR"]
  else:
    os.environ["JREID_DATA_DIR"] = previous


def _case(config_module, clip: bool = False, bert: bool = False):
  """A case's config: the smoke preset of `config_module`, started from a tiny converted CLIP and with BERT
  instructions if asked."""
  def config(weights, tiny):
    c = config_module.get_config("smoke")
    if clip:
      c.model.init = tiny_clip(weights, tiny.train)[0]
    if bert:
      c.model.instruction.update(encoder="bert", bert=tiny_bert(weights, tiny.train)[0])
    return c
  return config


CASES = {"image_reid+clip": _case(image_reid_config, clip=True), "unireid": _case(unireid_config),
         "unireid+clip": _case(unireid_config, clip=True), "instruct": _case(instruct_config),
         "instruct+clip+bert": _case(instruct_config, clip=True, bert=True), "unified": _case(unified_config),
         "itkm": _case(itkm_config), "itkm+clip": _case(itkm_config, clip=True)}


def _write_run(workdir, config, method):
  """A run directory (config.json, one checkpoint) of the method's initial state, its floats perturbed (zero-
  initialised gates and heads, ITKM's clothes-change centroids take part too); returns the state."""
  state = loop.state_setup(config, method).create()
  rng = np.random.default_rng(0)
  perturb = lambda x: x + jnp.asarray(0.05 * rng.standard_normal(x.shape), x.dtype) if jnp.issubdtype(  # noqa: E731
      x.dtype, jnp.floating) else x
  state = state.replace(params=jax.tree.map(perturb, state.params),
                        model_state=jax.tree.map(perturb, state.model_state))
  workdir.mkdir()
  checkpointer = Checkpointer(str(workdir / "checkpoints"))
  checkpointer.save(1, state, {})
  checkpointer.wait()
  checkpointer.close()
  (workdir / "config.json").write_text(config.to_json_best_effort())
  return state


def _copy(path, folder) -> str:
  return shutil.copy(path, folder / f"{len(os.listdir(folder))}{os.path.splitext(path)[1]}")


def _queries(tiny, folder):
  """Captioned photos with an instruction and a template, two of each scenario's identities and one of none,
  their image files copied into folder."""
  folder.mkdir()
  photos = [r for r in tiny.train if r.modality == "rgb" and r.captions and r.instruction and r.template]
  picked = [next(r for r in photos if r.scenario == scenario and r.pid % 2 == odd)
            for scenario in ("visible_infrared", "clothes_change", "cross_resolution") for odd in (0, 1)]
  return [dataclasses.replace(r, path=_copy(r.path, folder), template=_copy(r.template, folder)) for r in picked]


def _images(tiny, folder):
  """Gallery images of every kind a camera takes: a photo, a low-resolution one and an infrared one per
  scenario (with it or without), copied into folder."""
  folder.mkdir()
  picked = [next(r for r in tiny.train if r.scenario == scenario and r.modality == modality and (r.scale > 1) == low)
            for scenario in ("visible_infrared", "clothes_change", "cross_resolution", "")
            for modality, low in (("rgb", False), ("rgb", True), ("ir", False))
            if any(r.scenario == scenario and r.modality == modality and (r.scale > 1) == low for r in tiny.train)]
  return [dataclasses.replace(r, path=_copy(r.path, folder)) for r in picked]


@pytest.mark.parametrize("case", CASES)
def test_export_loads_without_run_weights_or_data(case, tiny, tmp_path, monkeypatch):
  weights = tmp_path / "weights"
  weights.mkdir()
  config = CASES[case](weights, tiny)
  method = methods.build(config, tiny.num_train_ids, training_records(tiny, config.data.train_modalities))
  state = _write_run(tmp_path / "run", config, method)
  queries = _queries(tiny, tmp_path / "queries")
  images = _images(tiny, tmp_path / "images")
  expected = {kind: method.encode_records(state, queries, kind, BATCH) for kind in method.query_kinds}
  expected_images = method.encode_records(state, images, "image", BATCH)

  convert.main(["export", "--workdir", str(tmp_path / "run"), "--dst", str(tmp_path / "model")])
  shutil.rmtree(tmp_path / "run")
  shutil.rmtree(weights)
  empty = tmp_path / "empty_data"
  empty.mkdir()
  monkeypatch.setenv("JREID_DATA_DIR", str(empty))

  encoder = jreid.load(str(tmp_path / "model"), batch_size=BATCH)
  assert encoder.query_kinds == method.query_kinds
  for kind, features in expected.items():
    np.testing.assert_allclose(encoder.encode(kind, queries), features, atol=1e-5, err_msg=kind)
  np.testing.assert_allclose(encoder.encode("image", images), expected_images, atol=1e-5)
  assert os.listdir(empty) == []
  exported = inference.read_spec(str(tmp_path / "model"))["config"]
  assert exported["model"]["init"] == "" and str(weights) not in json.dumps(exported)


def test_an_export_of_the_first_format_is_a_clear_error(tmp_path):
  (tmp_path / "export.json").write_text(json.dumps({"format": inference.FORMAT, "version": 1}))
  with pytest.raises(ValueError, match="version 1, expected 2: export the run again"):
    jreid.load(str(tmp_path))
