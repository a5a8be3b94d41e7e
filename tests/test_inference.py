"""Export of a training run and the Encoder of jreid.load: features, dtypes, devices, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jreid
from configs import image_reid
from data_pipelines.images import ImageError, decode_image
from jreid import convert, inference, methods
from jreid.train import loop


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_records):
  """A 2-step smoke run on the tiny records: (workdir, config, method, state)."""
  workdir = tmp_path_factory.mktemp("run")
  config = image_reid.get_config("smoke")
  config.data.update(num_ids=3, num_instances=2)
  config.train.update(num_steps=2, checkpoint_every=1)
  (workdir / "config.json").write_text(config.to_json_best_effort())
  method = methods.build(config, len({r.pid for r in tiny_records}), tiny_records)
  state, _ = loop.train(config, str(workdir), method, show_progress=False)
  return str(workdir), config, method, state


@pytest.fixture(scope="module")
def model_dir(run, tmp_path_factory):
  dst = tmp_path_factory.mktemp("model")
  convert.main(["export", "--workdir", run[0], "--dst", str(dst)])
  return str(dst)


def _reference(run, paths, step=None):
  workdir, config, method, state = run
  if step is not None:
    state = loop.restore_state(config, workdir, method, step)
  images = np.stack([decode_image(p, tuple(config.model.vision.image_size)) for p in paths])
  return np.asarray(method.encode_images(state.params, state.model_state, images))


def test_export_writes_spec_without_optimizer_state(model_dir):
  spec = inference.read_spec(model_dir)
  assert spec["method"] == "image_reid" and spec["num_classes"] == 7 and spec["dtype"] == "float32"
  assert spec["source"]["step"] == 2 and spec["tokenizer"] is None
  assert spec["preprocessing"]["image_size"] == [64, 32]
  assert spec["query_kinds"] == ["image", "sketch", "image+instruction", "image+template"]
  keys = inference.load_variables(model_dir)._asdict().keys()
  assert list(keys) == ["params", "model_state"]


def test_encoder_matches_the_trained_method(model_dir, run, tiny_records):
  encoder = jreid.load(model_dir, batch_size=2)
  paths = [r.path for r in tiny_records[:9]]  # chunks of 6 and 3 images (3 batches at most), one padded
  features = encoder.encode_images(paths)
  np.testing.assert_allclose(features, _reference(run, paths), atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(encoder.encode_sketches(paths[:3]), features[:3], atol=1e-6)
  # An image-only model answers image+instruction queries from the image (modality-missing fallback).
  np.testing.assert_allclose(encoder.encode_image_instructions(paths[:2], ["Ignore clothes."] * 2), features[:2],
                             atol=1e-6)


def test_export_of_a_chosen_step(run, tmp_path, tiny_records):
  convert.main(["export", "--workdir", run[0], "--dst", str(tmp_path), "--step", "1"])
  paths = [r.path for r in tiny_records[:3]]
  np.testing.assert_allclose(jreid.load(str(tmp_path)).encode_images(paths), _reference(run, paths, step=1),
                             atol=1e-5)


def test_bf16_export_is_close_to_fp32(run, model_dir, tmp_path, tiny_records):
  spec = inference.export(run[0], str(tmp_path), dtype="bf16")
  assert spec["dtype"] == "bfloat16" and spec["config"]["model"]["vision"]["dtype"] == "bfloat16"
  assert inference.load_variables(str(tmp_path)).params["vision"]["proj"]["kernel"].dtype == jnp.bfloat16
  paths = [r.path for r in tiny_records[:4]]
  bf16, fp32 = jreid.load(str(tmp_path)).encode_images(paths), jreid.load(model_dir).encode_images(paths)
  assert np.min(np.sum(bf16 * fp32, axis=1)) > 0.98


def test_work_spreads_over_devices_and_workers(model_dir, tiny_records):
  paths = [r.path for r in tiny_records]
  single = jreid.load(model_dir, batch_size=2, workers=1).encode_images(paths)
  devices = jax.local_devices() * 2  # two copies on each device, as on a host of twice as many devices
  spread = jreid.load(model_dir, batch_size=2, devices=devices, workers=3)
  done = []
  np.testing.assert_allclose(spread.encode_images(paths, on_chunk=done.append), single, atol=1e-6)
  assert sum(done) == len(paths) and len(done) == -(-len(paths) // 6)


def test_unsupported_query_kinds_are_clear_errors(model_dir):
  encoder = jreid.load(model_dir)
  with pytest.raises(inference.UnsupportedQueryError, match="cannot encode text queries; it encodes image, sketch"):
    encoder.encode_texts(["a man in a red coat"])
  with pytest.raises(ValueError, match="2 images but 1 instructions"):
    encoder.encode_image_instructions(["a.png", "b.png"], ["Ignore clothes."])
  with pytest.raises(ImageError, match="missing.png"):
    encoder.encode_images(["missing.png"])


def test_wrong_directories_are_clear_errors(run, tmp_path, capsys):
  with pytest.raises(FileNotFoundError, match="is a training run: export it first"):
    jreid.load(run[0])
  (tmp_path / "clip").mkdir()
  (tmp_path / "clip" / "model_config.json").write_text("{}")
  with pytest.raises(FileNotFoundError, match="converted CLIP weights"):
    jreid.load(str(tmp_path / "clip"))
  with pytest.raises(FileNotFoundError, match="no such directory"):
    jreid.load(str(tmp_path / "missing"))
  with pytest.raises(SystemExit) as exit_info:
    convert.main(["export", "--workdir", str(tmp_path), "--dst", str(tmp_path / "out")])
  assert exit_info.value.code == 1
  assert "is not a jreid training run" in capsys.readouterr().err
  with pytest.raises(ValueError, match="no checkpoint of step 7"):
    inference.export(run[0], str(tmp_path / "out"), step=7)
