"""UNIReID on the tiny synthetic set: tokenizer, companions, loss wiring, fusion, encoding, train + evaluate."""

import os
import pickle
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import unireid as unireid_config
from data_pipelines import images as image_ops
from data_pipelines import pipeline
from data_pipelines.datasets import training_records
from jreid import methods
from jreid.eval.tasks import evaluate_tasks
from jreid.methods import text as text_lib
from jreid.methods.unireid import UNIReID, UNIReIDNet, draw_sketch, is_training_photo
from jreid.models import load_clip
from jreid.train import loop
from jreid.train.step import make_train_step
from tiny_weights import tiny_clip


@pytest.fixture(scope="module")
def method(tiny):
  return methods.build(_config(), tiny.num_train_ids, tiny.train)


def _config(**loss):
  config = unireid_config.get_config("smoke")
  config.loss.update(**loss)
  config.eval.batch_size = 8
  return config


def _batch(method, records, size=4, seed=0):
  rows = method.train_records(records)
  spec = pipeline.TrainBatchSpec(image_size=method.vision.image_size, num_ids=size // 2, num_instances=2, seed=seed)
  batch = next(iter(pipeline.train_dataset(rows, spec, companions=method.companions())))
  return {k: jnp.asarray(v) for k, v in batch.items()}


@pytest.fixture(scope="module")
def ready(method, tiny):
  """A training batch and the default method's initial parameters."""
  batch = _batch(method, tiny.train)
  return batch, method.init(jax.random.PRNGKey(0), batch)[0]


def test_local_tokenizer_is_trained_once_then_read_from_the_cache(tiny, tmp_path, monkeypatch):
  config = _config()
  first = text_lib.method_tokenizer(config, tiny.train, str(tmp_path))
  (cached,) = os.listdir(tmp_path)
  monkeypatch.setattr(text_lib, "build_local_tokenizer", lambda *a: pytest.fail("rebuilt a cached tokenizer"))
  again = text_lib.method_tokenizer(config, tiny.train, str(tmp_path))
  caption = tiny.train[1].captions[0]
  np.testing.assert_array_equal(first.encode(caption), again.encode(caption))
  assert cached.startswith(f"bpe-{config.model.text.vocab_size}-")
  tokens = text_lib.TextTokens(again, 48)
  ids = pickle.loads(pickle.dumps(tokens))(caption)
  assert ids.shape == (48,) and ids.dtype == np.int32 and again.eot_token_id in ids


def test_training_rows_and_their_companions(method, tiny):
  rows = method.train_records(tiny.train)
  assert rows and all(r.modality == "rgb" and r.scale == 1 and r.captions for r in rows)
  companions = method.companions()
  companions.flip, companions.padding = False, 0
  size = method.vision.image_size
  sketch_of = {r.source: r.path for r in tiny.train if r.modality == "sketch"}
  drawn_row = next(i for i, r in enumerate(rows) if r.path not in sketch_of)
  sketched_row = next(i for i, r in enumerate(rows) if r.path in sketch_of)
  # The data's sketch of the photo where it has one, else the photo drawn as a sketch.
  out = companions(sketched_row, rows[sketched_row], np.random.default_rng(0))
  np.testing.assert_array_equal(out["sketch"], image_ops.decode_image(sketch_of[rows[sketched_row].path], size))
  drawn = companions(drawn_row, rows[drawn_row], np.random.default_rng(0))
  np.testing.assert_array_equal(drawn["sketch"], draw_sketch(rows[drawn_row].path, size))
  assert out["sketch"].shape == (*size, 3) and out["sketch"].dtype == np.uint8
  assert out["text"].shape == (method.text.context_length,) and out["text"].dtype == np.int32
  assert any(np.array_equal(out["text"], method.tokens(c)) for c in rows[sketched_row].captions)
  again = pickle.loads(pickle.dumps(companions))(sketched_row, rows[sketched_row], np.random.default_rng(0))
  for key in out:
    np.testing.assert_array_equal(out[key], again[key])
  # Augmented sketches are shifted on white paper: the shift adds no dark pixels.
  companions.padding = 8
  dark = np.sum(out["sketch"] < 128)
  assert all(np.sum(companions(sketched_row, rows[sketched_row], np.random.default_rng(seed))["sketch"] < 128) <= dark
             for seed in range(4))


def test_drawn_sketches_ignore_the_data_sketches(tiny):
  config = _config()
  config.data.sketches = "drawn"
  drawn = methods.build(config, tiny.num_train_ids, tiny.train)
  rows = drawn.train_records(tiny.train)
  companions = drawn.companions()
  companions.flip, companions.padding = False, 0
  sketched = {r.source for r in tiny.train if r.modality == "sketch"}
  row = next(r for r in rows if r.path in sketched)
  out = companions(0, row, np.random.default_rng(1))
  np.testing.assert_array_equal(out["sketch"], draw_sketch(row.path, drawn.vision.image_size))


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax(x):
  x = x - x.max(axis=1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _reference_loss(out, labels, cfg):
  scale = np.exp(min(float(out.log_scale), np.log(100.0)))
  image, sketch, text, fusion = (_unit(x) for x in (out.image, out.sketch, out.text, out.fusion))
  targets = (labels[:, None] == labels[None, :]).astype(np.float64)
  targets /= targets.sum(1, keepdims=True)

  def nce(a, b):
    logits = scale * a @ b.T
    return (-(targets * _log_softmax(logits)).sum(1) - (targets * _log_softmax(logits.T)).sum(1)) / 2

  it, is_, if_ = nce(image, text), nce(image, sketch), nce(image, fusion)
  if cfg.dynamic:
    p_a, p_b = np.exp(-it), np.exp(-is_)
    w_a = (p_b + 1e-9) * 2 * p_a * p_b / (p_a + p_b + 1e-9)
    w_b = (p_a + 1e-9) * 2 * p_a * p_b / (p_a + p_b + 1e-9)
    tasks = np.mean((1 + w_a) ** cfg.dynamic_gamma * it) + np.mean((1 + w_b) ** cfg.dynamic_gamma * is_)
  else:
    tasks = it.mean() + is_.mean()
  teacher = np.exp(_log_softmax(scale * text @ image.T))
  align = -np.mean((teacher * _log_softmax(scale * sketch @ image.T)).sum(1))
  return tasks + if_.mean() + cfg.align_weight * align


@pytest.mark.parametrize("loss", [dict(), dict(dynamic=False, align_weight=0.0), dict(positives="identity")])
def test_loss_matches_numpy(tiny, ready, loss):
  batch, params = ready
  variant = methods.build(_config(**loss), tiny.num_train_ids, tiny.train)  # same parameters, other loss
  total, (terms, _) = variant.loss(params, {}, batch, None)
  out = variant.net.apply({"params": params}, batch["image"], batch["sketch"], batch["text"])
  cfg = variant.config.loss
  labels = np.asarray(batch["label"] if cfg.positives == "identity" else batch["index"])
  np.testing.assert_allclose(float(total), _reference_loss(out, labels, cfg), rtol=2e-4)
  assert {"photo_text", "photo_sketch", "photo_fusion", "tasks", "align", "temperature"} <= set(terms)


def test_identity_loss_adds_a_classifier(tiny, ready):
  batch, _ = ready
  method = methods.build(_config(id_weight=1.0), tiny.num_train_ids, tiny.train)
  params, model_state = method.init(jax.random.PRNGKey(0), batch)
  assert params["classifier"]["kernel"].shape[-1] == tiny.num_train_ids
  _, (terms, _) = method.loss(params, model_state, batch, None)
  np.testing.assert_allclose(float(terms["id"]), np.log(tiny.num_train_ids), rtol=0.05)  # near-uniform at init


@pytest.mark.parametrize("fusion", ["weighted", "cross_attention"])
def test_fusions_start_as_the_sum_and_learn(tiny, ready, fusion):
  batch, _ = ready
  config = _config()
  config.model.fusion = fusion
  method = methods.build(config, tiny.num_train_ids, tiny.train)
  params, model_state = method.init(jax.random.PRNGKey(0), batch)
  out = method.net.apply({"params": params}, batch["image"], batch["sketch"], batch["text"])
  np.testing.assert_allclose(np.asarray(out.fusion), np.asarray(out.text + out.sketch), rtol=1e-5, atol=1e-6)
  grads = jax.jit(jax.grad(lambda p: method.loss(p, model_state, batch, None)[0]))(params)
  fusion_params = grads["fusion_gates"] if fusion == "weighted" else grads["fuser"]["attention"]["out"]["kernel"]
  assert np.any(np.asarray(fusion_params))


def test_encode_records_for_every_query_kind(method, tiny, ready):
  _, params = ready
  state = types.SimpleNamespace(params=params, model_state={})
  query = tiny.tasks["text+sketch"].query[:3]
  features = {kind: method.encode_records(state, query, kind, 2) for kind in ("text", "sketch", "text+sketch")}
  features["image"] = method.encode_records(state, tiny.tasks["text"].gallery[:5], "image", 2)
  for kind, f in features.items():
    assert f.shape[1] == method.vision.embed_dim and f.dtype == np.float32, kind
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
  # text+sketch is the normalised sum of the two raw features.
  sketches = np.stack([image_ops.decode_image(r.path, method.vision.image_size) for r in query])
  raw_sketch = method.net.apply({"params": params}, sketches, method=UNIReIDNet.encode_images).embedding
  raw_text = method.net.apply({"params": params}, method.tokens.batch([r.captions[0] for r in query]),
                              method=UNIReIDNet.encode_texts).embedding
  np.testing.assert_allclose(features["text+sketch"], _unit(raw_sketch + raw_text), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(features["sketch"], _unit(raw_sketch), rtol=1e-4, atol=1e-5)
  # A photo given as a sketch query is drawn as a sketch first.
  photo = tiny.tasks["text"].gallery[0]
  drawn = method.net.apply({"params": params}, draw_sketch(photo.path, method.vision.image_size)[None],
                           method=UNIReIDNet.encode_images).embedding
  np.testing.assert_allclose(method.encode_records(state, [photo], "sketch", 2), _unit(drawn), rtol=1e-4, atol=1e-5)


def test_train_then_evaluate_text_sketch_and_both(method, tiny, tmp_path):
  config = method.config
  rows = method.train_records(tiny.train)
  spec = loop.batch_spec(config)
  setup = loop.state_setup(config, method)
  state, step = setup.create(), make_train_step(method.loss, setup.phases[0].tx)
  iterator = iter(pipeline.train_dataset(rows, spec, companions=method.companions()))
  for _ in range(2):
    state, metrics = step(state, next(iterator))
  assert np.isfinite(float(metrics["loss"]))
  results = evaluate_tasks(config, method, state, tiny, str(tmp_path))
  assert set(results) == {"text", "sketch", "text+sketch"}
  for name, r in results.items():
    assert 0 <= r["mAP"] <= 1 and 0 <= r["rank1"] <= 1 and r["queries"] > 0, name


def test_towers_start_from_a_converted_clip(tiny, tmp_path):
  config = _config()
  config.model.init, saved = tiny_clip(tmp_path, tiny.train)
  method = UNIReID(config, tiny.num_train_ids, tiny.train)
  assert method.tokenizer.vocab_size == load_clip(config.model.init)[2].vocab_size
  assert method.text.context_length == 24
  assert is_training_photo(tiny.train[1])
  params, _ = method.init(jax.random.PRNGKey(0), _batch(method, tiny.train))
  for a, b in zip(jax.tree.leaves(params["text"]), jax.tree.leaves(saved["text"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(params["vision"]["class_embedding"], saved["vision"]["class_embedding"])
  assert params["vision"]["pos_embedding"].shape == (1 + 4 * 2, 32)  # the smoke image size, 64 x 32
  # The trainer builds its state from the same init under jax tracing.
  state = loop.state_setup(config, method).create()
  np.testing.assert_array_equal(np.asarray(state.params["text"]["pos_embedding"]), saved["text"]["pos_embedding"])


def test_built_without_records_it_reads_the_records_training_reads(tiny):
  """An export builds the method with no records; it must read the run's training records (its data filtered by
  data.train_modalities, as jreid.main trains on), so that its local tokenizer is the one training used."""
  config = unireid_config.get_config("smoke")
  config.data.train_modalities = ("rgb",)  # sketches carry captions too: reading every record would differ
  trained_on = training_records(tiny, config.data.train_modalities)
  rebuilt = UNIReID(config, tiny.num_train_ids)
  assert rebuilt.train_set == tuple(trained_on)
  original = UNIReID(config, tiny.num_train_ids, trained_on)
  captions = [r.captions[0] for r in trained_on[:8]]
  np.testing.assert_array_equal(rebuilt.tokenizer.encode(captions), original.tokenizer.encode(captions))
