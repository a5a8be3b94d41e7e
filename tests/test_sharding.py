"""Mesh, sharding rules, FSDP, and training / checkpoints across device counts (8 fake CPU devices)."""

import functools
import os
import pathlib
import subprocess
import sys
import tempfile
from xml.etree import ElementTree

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from configs import image_reid
from data_pipelines import pipeline
from jreid import methods
from jreid.train import distributed, loop, sharding
from jreid.train.checkpoint import Checkpointer
from jreid.train.step import make_train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
RULES = image_reid.get_config("smoke").mesh.rules
SIZES = {"data": 1, "fsdp": 4, "model": 2}
_EIGHT_DEVICE_TESTS = []


def on_eight_devices(test):
  """Runs `test` on 8 fake CPU devices: here if this process has them, else in one fresh pytest process
  that runs every such test of this module (XLA fixes the device count when JAX starts, and other test
  modules start it with one device)."""
  _EIGHT_DEVICE_TESTS.append(test.__name__)

  @functools.wraps(test)
  def wrapper(*args, **kwargs):
    if jax.device_count() >= 8:
      return test(*args, **kwargs)
    failure = _run_on_eight_devices().get(test.__name__, "did not run")
    assert not failure, failure
  return wrapper


@functools.cache
def _run_on_eight_devices() -> dict[str, str]:
  """{test name: '' if it passed, else its failure report} of a pytest run with 8 CPU devices."""
  with tempfile.TemporaryDirectory() as tmp:
    report = os.path.join(tmp, "report.xml")
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"}
    # -n 0: these tests in that one process (not in the addopts' two pytest-xdist workers).
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                          f"--junitxml={report}", *(f"{__file__}::{name}" for name in _EIGHT_DEVICE_TESTS)],
                         cwd=REPO, env=env, capture_output=True, text=True)
    if not os.path.exists(report):
      return {name: run.stdout[-3000:] + run.stderr[-3000:] for name in _EIGHT_DEVICE_TESTS}
    cases = ElementTree.parse(report).getroot().iter("testcase")
    return {case.get("name"): "\n".join(f"{e.tag}: {e.get('message', '')}\n{e.text or ''}" for e in case
                                        if e.tag in ("failure", "error", "skipped")) for case in cases}


def test_mesh_shape_fills_in_the_rest():
  assert sharding.mesh_shape({"data": -1, "fsdp": 2}, 8) == (4, 2, 1)
  assert sharding.mesh_shape({"data": 2, "fsdp": 2, "model": -1}, 8) == (2, 2, 2)
  assert sharding.mesh_shape({"data": 1}, 8) == (1, 1, 1)
  with pytest.raises(ValueError, match="do not split"):
    sharding.mesh_shape({"data": -1, "fsdp": 3}, 8)
  with pytest.raises(ValueError, match="needs 16 devices"):
    sharding.mesh_shape({"data": 4, "fsdp": 4}, 8)
  with pytest.raises(ValueError, match="unknown axes"):
    sharding.mesh_shape({"batch": 2}, 8)


def test_fsdp_shards_the_largest_divisible_dimension_of_big_weights():
  spec = functools.partial(sharding.param_spec, axis_sizes={"data": 2, "fsdp": 4, "model": 1}, rules=(),
                           fsdp_min_size=1024)
  assert spec("vision/transformer/blocks_0/mlp/fc1/kernel", (768, 3072)) == P(None, "fsdp")
  assert spec("vision/pos_embedding", (129, 768)) == P(None, "fsdp")  # 129 does not divide over 4
  assert spec("vision/patch_embed/kernel", (16, 16, 3, 768)) == P(None, None, None, "fsdp")
  assert spec("vision/ln_pre/scale", (768,)) == P(None)  # small: replicated
  assert spec("head/classifier/kernel", (33, 751)) == P(None, None)  # nothing divides
  assert sharding.param_spec("w", (4096,), {"data": 8, "fsdp": 1, "model": 1}, (), 0) == P(None)


def test_rules_split_over_model_then_fsdp_takes_another_dimension():
  spec = functools.partial(sharding.param_spec, axis_sizes=SIZES, rules=RULES, fsdp_min_size=1024)
  assert spec("vision/transformer/blocks_3/attn/query/kernel", (768, 768)) == P("fsdp", "model")
  assert spec("vision/transformer/blocks_3/attn/out/kernel", (768, 768)) == P("model", "fsdp")
  assert spec("vision/transformer/blocks_3/mlp/fc2/kernel", (3072, 768)) == P("model", "fsdp")
  assert spec("vision/transformer/blocks_3/mlp/fc1/bias", (3072,)) == P("model")
  # Without a model axis the same rules leave FSDP alone.
  no_model = {"data": 1, "fsdp": 4, "model": 1}
  assert sharding.param_spec("blocks_3/mlp/fc2/kernel", (3072, 768), no_model, RULES, 1024) == P("fsdp", None)
  with pytest.raises(ValueError, match="does not split over"):
    spec("blocks_0/mlp/fc1/bias", (3,))


def test_distributed_detects_the_launcher():
  torchrun = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "1234", "WORLD_SIZE": "16", "RANK": "9",
              "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "8"}
  assert distributed.detect(torchrun) == distributed.Launch("torchrun", "10.0.0.1:1234", 16, 9, (1,))
  one_per_host = {**torchrun, "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
  assert distributed.detect(one_per_host) == distributed.Launch("torchrun", "10.0.0.1:1234", 2, 1, None)
  assert distributed.detect({**torchrun, "WORLD_SIZE": "1"}) is None
  assert distributed.detect({"SLURM_JOB_ID": "7", "SLURM_STEP_NUM_TASKS": "4"}) == distributed.Launch("slurm")
  assert distributed.detect({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "JAX_PLATFORMS": "cpu"}) is None
  assert distributed.detect(torchrun, "h:1", 2, 0) == distributed.Launch("flags", "h:1", 2, 0)


def _config(shape):
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=4, num_instances=2)
  config.optim.eps = 1e-3  # see test_train_step_agrees_on_8_devices_...
  config.mesh.shape.update(shape)
  config.mesh.fsdp_min_size = 0  # the smoke model is tiny: shard everything that divides
  return config


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@functools.cache
def _start(records: tuple):
  """(method, fresh train state in host memory, first batch) of the 1-device config, shared by the tests."""
  config = _config(dict(data=1))
  method = methods.build(config, num_classes=7)
  state = loop.state_setup(config, method).create()
  batch = next(iter(pipeline.train_dataset(list(records), loop.batch_spec(config))))
  return method, jax.device_get(state), batch


def _layout(shape, method):
  """(mesh, optimizer, abstract state with its shardings) of the mesh of `shape`."""
  config = _config(shape)
  mesh = sharding.make_mesh(config.mesh)
  setup = loop.state_setup(config, method, mesh)
  return mesh, setup.phases[0].tx, setup.abstract


def _one_step(shape, method, state, batch):
  """(state, metrics) after one train step on the mesh of `shape`, from host copies of state and batch."""
  mesh, tx, abstract = _layout(shape, method)
  layouts = sharding.step_shardings(mesh, jax.tree.map(lambda x: x.sharding, abstract))
  step = make_train_step(method.loss, tx, layouts)
  return step(jax.device_put(state, layouts.state), sharding.global_batch(batch, layouts.batch))


@on_eight_devices
def test_train_step_agrees_on_8_devices_4x2_fsdp_2x2x2_and_1_device(tiny_records):
  """AdamW's update is about lr * sign(gradient): for a gradient that is rounding noise (the BNNeck
  scale's, a sum of centred activations) the sign depends on the reduction order, so the test uses
  eps = 1e-3, which leaves such gradients' updates near zero and real ones Adam-like."""
  method, state, batch = _start(tuple(tiny_records))
  reference, metrics = _one_step(dict(data=1), method, state, batch)
  for shape in (dict(data=8), dict(data=4, fsdp=2), dict(data=2, fsdp=2, model=2)):
    new, new_metrics = _one_step(shape, method, state, batch)
    np.testing.assert_allclose(float(new_metrics["loss"]), float(metrics["loss"]), rtol=1e-5, err_msg=str(shape))
    for a, b in zip(_leaves(reference), _leaves(new)):
      np.testing.assert_allclose(b, a, atol=1e-5, err_msg=str(shape))
    fc1 = new.params["vision"]["transformer"]["blocks_0"]["mlp"]["fc1"]["kernel"]
    if shape.get("fsdp"):
      expected = P("fsdp", "model") if shape.get("model") else P(None, "fsdp")
      assert fc1.sharding.spec == expected
      moments = [x for x in jax.tree_util.tree_leaves(new.opt_state) if x.shape == fc1.shape]
      assert len(moments) == 2 and all(m.sharding.spec == expected for m in moments)
  assert not np.array_equal(_leaves(reference.params)[-1], _leaves(state.params)[-1])


@on_eight_devices
def test_checkpoint_saved_on_8_devices_restores_on_4_and_1(tmp_path, tiny_records):
  method, state, _ = _start(tuple(tiny_records))
  _, _, abstract = _layout(dict(data=4, fsdp=2), method)
  saved = jax.device_put(state, jax.tree.map(lambda x: x.sharding, abstract))
  assert saved.params["vision"]["pos_embedding"].sharding.spec == P(None, "fsdp")
  checkpointer = Checkpointer(str(tmp_path))
  checkpointer.save(3, saved, {"position": 3})
  checkpointer.wait()
  for shape, devices in ((dict(data=2, fsdp=2), 4), (dict(data=1), 1)):
    restored, data_state = checkpointer.restore(_layout(shape, method)[2])
    assert data_state == {"position": 3}
    assert {len(x.sharding.device_set) for x in jax.tree_util.tree_leaves(restored)} == {devices}
    for a, b in zip(_leaves(saved), _leaves(restored)):
      np.testing.assert_array_equal(a, b)
  checkpointer.close()
