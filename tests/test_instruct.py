"""Instruct-ReID on the tiny synthetic set: task views, instruction companions, losses, encoding, train + evaluate."""

import dataclasses
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import instruct as instruct_config
from data_pipelines import instructions, mixing
from data_pipelines.datasets import training_records
from jreid import methods
from jreid.eval import protocols
from jreid.eval.tasks import evaluate_tasks
from jreid.methods.instruct import kinds, tasks
from jreid.models import bert
from jreid.train import loop
from jreid.train.state import TrainState
from tiny_weights import tiny_bert, tiny_clip

SIX = instruct_config.TASKS


def _config(**model):
  config = instruct_config.get_config("smoke")
  config.model.update(**model)
  config.eval.batch_size = 8
  return config


@pytest.fixture(scope="module")
def method(tiny):
  return _build(tiny, _config())


def _build(tiny, config):
  return methods.build(config, tiny.num_train_ids, training_records(tiny, config.data.train_modalities))


def _stream(method, tiny, mode="per_batch", num_ids=None):
  config = method.config
  spec = loop.batch_spec(config)
  spec = dataclasses.replace(spec, num_ids=num_ids or spec.num_ids)
  records = training_records(tiny, config.data.train_modalities)
  return iter(mixing.mixed_dataset(method.train_tasks(records, spec), mode, config.seed))


@pytest.fixture(scope="module")
def initial(method, tiny):
  """A batch holding rows of every task, and initial (params, model_state)."""
  batch = next(_stream(method, tiny, mode="mixed", num_ids=6))
  return batch, jax.jit(method.init)(jax.random.key(0), batch)


def _gates(tree):
  return [np.asarray(x) for path, x in jax.tree_util.tree_leaves_with_path(tree["vision"]) if path[-1].key == "gate"]


def test_task_views(method, tiny):
  records = training_records(tiny, ("rgb", "ir"))
  views = {kind: tasks.task_records(kind, records, method.outfits) for kind in SIX}
  first_outfit = {}
  for r in views["clothes_changing"]:
    first_outfit[r.pid] = min(first_outfit.get(r.pid, r.clothes_id), r.clothes_id)
  assert {r.clothes_id for r in views["traditional"]} == set(first_outfit.values())
  assert {r.modality for r in views["visible_infrared"]} == {"rgb", "ir"}
  assert all(r.modality == "rgb" and r.scale == 1 for k in SIX if k != "visible_infrared" for r in views[k])
  assert all(r.captions for r in views["text"])
  assert len(views["clothes_changing"]) > len(views["traditional"])


def test_companions_draw_each_tasks_instruction(method, tiny):
  records = training_records(tiny, ("rgb", "ir"))
  photo = next(r for r in records if r.modality == "rgb" and len(method.outfits.with_templates(r.pid)) > 1)
  tokens = method.tokens
  for kind in SIX:
    companions = tasks.InstructionCompanions(kind, method.identities, method.outfits, tokens,
                                                method.template.image_size)
    companions = pickle.loads(pickle.dumps(companions))  # worker processes get a copy
    out = companions(0, photo, np.random.default_rng(0))
    assert set(out) == {"identity", "instruction", "template", "instruction_kind"}
    assert out["identity"] == method.identities[photo.pid]
    assert out["instruction"].shape == (method.tokens.context_length,)
    assert out["template"].shape == (*method.template.image_size, 3)
    expected_kind = {"text": kinds.CAPTION, "clothes_template": kinds.TEMPLATE}.get(kind, kinds.TEXT)
    assert out["instruction_kind"] == expected_kind, kind
    if kind in instructions.POOLS:
      assert any(np.array_equal(out["instruction"], tokens(s)) for s in instructions.POOLS[kind])
    elif kind == "text":
      assert any(np.array_equal(out["instruction"], tokens(c)) for c in photo.captions)
    elif kind == "language_instructed":
      texts = [t for c in method.outfits.with_descriptions(photo.pid)
               for t in method.outfits.descriptions[(photo.pid, c)]]
      assert any(np.array_equal(out["instruction"], tokens(t)) for t in texts)
    if kind == "clothes_template":
      targets = {np.asarray(companions(0, photo, np.random.default_rng(s))["template"]).tobytes() for s in range(12)}
      assert len(targets) == len(method.outfits.with_templates(photo.pid))  # every outfit gets drawn
    else:
      assert not out["template"].any()


def test_losses_by_row_kind(method, initial):
  batch, (params, model_state) = initial
  loss_fn = jax.jit(method.loss)
  loss, (terms, _) = loss_fn(params, model_state, batch, jax.random.key(1))
  assert np.isfinite(float(loss)) and float(terms["gate"]) == 0.0
  for name in ("triplet", "id", "triplet_out", "id_out", "contrastive", "matching"):
    assert float(terms[name]) > 0, name
  # A batch without text-to-image rows has no text-to-image loss, one of only such rows no ReID loss.
  for only_captions in (False, True):
    kind = np.where(batch["instruction_kind"] == kinds.CAPTION, kinds.TEXT, batch["instruction_kind"])
    if only_captions:
      kind = np.full_like(kind, kinds.CAPTION)
    _, (terms, _) = loss_fn(params, model_state, {**batch, "instruction_kind": kind}, jax.random.key(1))
    zero = ("triplet", "id", "triplet_out", "id_out") if only_captions else ("contrastive", "matching")
    assert all(float(terms[name]) == 0.0 for name in zero), terms


def test_instructions_edit_the_retrieval_feature_once_gates_open(method, tiny, initial):
  _, (params, model_state) = initial
  state = TrainState(step=0, params=params, model_state=model_state, opt_state=(), rng=jax.random.key(0))
  query = tiny.tasks["clothes_template"].query[:3]
  plain = method.encode_records(state, query, "sketch", 4)  # no instruction
  templated = method.encode_records(state, query, "image+template", 4)
  np.testing.assert_allclose(templated, plain, atol=1e-5)  # gates at zero: the plain ViT
  opened = jax.tree_util.tree_map_with_path(lambda p, x: jnp.full_like(x, 2.0) if p[-1].key == "gate" else x, params)
  state = state.replace(params=opened)
  templated = method.encode_records(state, query, "image+template", 4)
  assert np.abs(templated - method.encode_records(state, query, "sketch", 4)).max() > 1e-3
  np.testing.assert_allclose(np.linalg.norm(templated, axis=1), 1.0, rtol=1e-5)
  texts = method.encode_records(state, tiny.tasks["text"].query[:5], "text", 4)
  assert texts.shape == (5, method.vision.embed_dim)


def test_ablations_build_without_gates(tiny, initial):
  config = _config(editing=False)
  config.loss.adaptive = False
  method = _build(tiny, config)
  batch, _ = initial
  params, model_state = jax.eval_shape(method.init, jax.random.key(0), batch)
  assert not _gates(params) and "fusion" in params
  loss, (terms, _) = jax.eval_shape(method.loss, params, model_state, batch, jax.random.key(1))
  assert loss.shape == () and "gate" not in terms


def test_train_then_evaluate_all_six_tasks(tiny, tmp_path):
  missing = sorted({tiny.tasks[t].protocol for t in SIX} - set(protocols.PROTOCOLS))
  if missing:
    pytest.skip(f"jreid.eval.protocols lacks the protocols {missing}")
  config = _config()
  config.data.update(mix_mode="mixed", num_ids=6)  # every batch holds rows of all six tasks
  method = _build(tiny, config)
  initial_params = jax.device_get(loop.state_setup(config, method).create().params)
  state, history = loop.train(config, str(tmp_path / "run"), method, show_progress=False, stop_at=2)
  assert np.isfinite(history[2]["loss"])
  # Every row kind reaches the gates and the instruction towers: all of them moved.
  assert all(np.all(g != 0) for g in _gates(state.params))
  for tower in ("text", "template", "fusion", "matching", "logit_scale"):
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), state.params[tower],
                         initial_params[tower])
    assert any(jax.tree.leaves(moved)), tower
  results = evaluate_tasks(config, method, state, tiny, str(tmp_path))
  assert set(results) == set(SIX)
  for name, r in results.items():
    assert 0 <= r["mAP"] <= 1 and r["queries"] > 0, name


def test_towers_start_from_a_converted_clip_and_bert(tiny, tmp_path):
  clip_dir, clip_params = tiny_clip(tmp_path, tiny.train)
  bert_dir, bert_params = tiny_bert(tmp_path, tiny.train)
  config = _config(init=clip_dir)
  config.model.instruction.update(encoder="bert", bert=bert_dir)
  method = _build(tiny, config)
  assert method.text is None and method.template.width == 32
  batch = next(_stream(method, tiny, mode="mixed", num_ids=6))
  params, _ = jax.jit(method.init)(jax.random.key(0), batch)
  np.testing.assert_array_equal(params["vision"]["class_embedding"], clip_params["vision"]["class_embedding"])
  np.testing.assert_array_equal(params["template"]["ln_post"]["scale"], clip_params["vision"]["ln_post"]["scale"])
  assert params["vision"]["pos_embedding"].shape == (1 + 4 * 2, 32)  # the smoke image size, 64 x 32
  assert all(np.all(g == 0) for g in _gates(params))
  for a, b in zip(jax.tree.leaves(params["bert"]), jax.tree.leaves(bert_params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  wordpiece = bert.load_bert(bert_dir)[2]
  ids = method.tokens("Ignore clothes.")
  assert ids[0] == wordpiece.cls_token_id and wordpiece.sep_token_id in ids


def test_caption_less_photos_keep_the_photo_tasks_and_a_tokenizer_of_the_instructions(tmp_path, capsys,
                                                                                        monkeypatch):
  from data_pipelines.records import Record
  from jreid.methods.instruct.method import InstructReID
  from PIL import Image
  monkeypatch.setenv("JREID_DATA_DIR", str(tmp_path))
  records = []
  for pid in range(3):
    for j in range(2):
      path = tmp_path / f"{pid}_{j}.png"
      Image.new("RGB", (8, 16), (40 * pid, 60 * j, 90)).save(path)
      records.append(Record(str(path), pid, j))
  config = instruct_config.get_config("smoke")
  InstructReID.fit_to_data(config, "market1501", records)
  assert config.data.tasks == ("traditional", "clothes_changing")
  lines = capsys.readouterr().out.splitlines()
  assert lines == [f"instruct: skipping training task {kind!r}: market1501 has no {tasks.NEEDS[kind]}"
                   for kind in ("visible_infrared", "text", "clothes_template", "language_instructed")]
  method = methods.build(config, 3, records)
  sentence = instructions.POOLS["clothes_changing"][0]
  ids = list(method.tokenizer.encode(sentence, 48)[0])
  assert 2 < ids.index(method.tokenizer.eot_token_id) < len(sentence) // 2  # its BPE has learnt the sentences
  with pytest.raises(ValueError, match="none of config.data.tasks .* has training rows in market1501"):
    InstructReID.fit_to_data(instruct_config.get_config("smoke"), "market1501", [])
