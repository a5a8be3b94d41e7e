"""The pretraining method: its loss against a NumPy reference, the EMA teacher, resume, and its towers as a start."""

import json
import math

import jax
import numpy as np
import pytest
from PIL import Image

from configs import image_reid as image_reid_config
from configs import instruct as instruct_config
from configs import itkm as itkm_config
from configs import pretrain as pretrain_config
from configs import unified as unified_config
from configs import unireid as unireid_config
from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.clip_from_run import clip_from_run, plain_vision
from jreid.models import load_clip
from jreid.models.preprocess import normalize_images
from jreid.train import loop

COLOURS = ("red", "blue", "green", "black", "white", "yellow")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """A folder corpus of 12 coloured images in two subfolders, 8 with captions (CUHK-PEDES JSON)."""
  root = tmp_path_factory.mktemp("corpus")
  rng = np.random.default_rng(0)
  entries = []
  for i in range(12):
    sub = root / f"cam{i % 2}"
    sub.mkdir(exist_ok=True)
    image = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    Image.fromarray(image).save(sub / f"{i}.png")
    if i % 3:
      entries.append({"file_path": f"cam{i % 2}/{i}.png",
                      "captions": [f"a person in a {COLOURS[i % 6]} coat", f"{COLOURS[(i + 1) % 6]} trousers"]})
  captions = root / "captions.json"
  captions.write_text(json.dumps(entries))
  return root, captions


def _config(folder, steps=4):
  config = pretrain_config.get_config("smoke")
  config.corpus.update(root=str(folder[0]), captions=str(folder[1]))
  config.data.update(num_ids=6, num_workers=0)
  config.loss.update(contrastive_weight=1.0, dino_weight=0.5)  # both objectives, by weight
  config.train.update(num_steps=steps, checkpoint_every=2, log_every=1)
  return config


def _softmax(x):
  x = x - x.max(-1, keepdims=True)
  e = np.exp(x)
  return e / e.sum(-1, keepdims=True)


def _dino_reference(student, teacher, centre, tau_t, tau_s):
  """Mean over (teacher global view u, student view v != u) and images of the cross-entropy, by loops."""
  total, pairs = 0.0, 0
  for u in range(teacher.shape[0]):
    for v in range(student.shape[0]):
      if u == v:
        continue
      p = _softmax((teacher[u] - centre) / tau_t)
      log_q = np.log(_softmax(student[v] / tau_s))
      total += float(np.mean(-(p * log_q).sum(-1)))
      pairs += 1
  return total / pairs


def _clip_reference(images, texts, scale, valid):
  """Symmetric InfoNCE over the valid pairs, in NumPy."""
  a = images[valid] / np.linalg.norm(images[valid], axis=1, keepdims=True)
  b = texts[valid] / np.linalg.norm(texts[valid], axis=1, keepdims=True)
  logits = scale * a @ b.T
  diag = np.arange(len(a))
  return 0.5 * (-np.log(_softmax(logits)[diag, diag]).mean() - np.log(_softmax(logits.T)[diag, diag]).mean())


def test_loss_is_the_weighted_sum_of_clip_and_dino_with_an_ema_teacher(folder):
  config = _config(folder)
  method = methods.build(config, 0, ())
  batch = jax.tree.map(np.asarray, next(iter(method.train_stream(loop.batch_spec(config)))))
  assert batch["global"].shape[:2] == (6, 2) and batch["local"].shape[:2] == (6, 2) and "pid" not in batch
  params, state = method.init(jax.random.key(0), {"image": batch["photo"]})
  # A teacher other than the student, at a step inside the momentum and temperature schedules.
  params["vision"] = jax.tree.map(lambda x: x + 0.01 * np.sign(np.asarray(x) + 0.5), params["vision"])
  state = dict(state, step=np.int32(3), centre=np.full(state["centre"].shape, 0.01, np.float32))
  total, (terms, new_state) = method.loss(params, state, batch, jax.random.key(1))

  cfg = config.loss
  momentum = 1 - (1 - cfg.teacher_momentum) * (math.cos(math.pi * 3 / config.train.num_steps) + 1) / 2
  expected_teacher = jax.tree.map(lambda t, s: momentum * np.asarray(t) + (1 - momentum) * np.asarray(s),
                                  state["teacher"], {"vision": params["vision"], "head": params["head"]})
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new_state["teacher"],
               expected_teacher)
  student = np.concatenate([method._prototypes(params["vision"], params["head"], batch["global"]),
                            method._prototypes(params["vision"], params["head"], batch["local"])])
  teacher = np.asarray(method._prototypes(expected_teacher["vision"], expected_teacher["head"], batch["global"]))
  tau_t = cfg.teacher_temperature[0] + (cfg.teacher_temperature[1] - cfg.teacher_temperature[0]) * min(
      3 / cfg.teacher_warmup_steps, 1)
  dino = _dino_reference(student, teacher, state["centre"], tau_t, cfg.student_temperature)
  np.testing.assert_allclose(terms["dino"], dino, rtol=1e-4)
  np.testing.assert_allclose(new_state["centre"], cfg.centre_momentum * 0.01 + (1 - cfg.centre_momentum)
                             * teacher.reshape(-1, teacher.shape[-1]).mean(0), rtol=1e-5, atol=1e-7)

  images = np.asarray(method.vision_net.apply({"params": params["vision"]},
                                               normalize_images(batch["photo"], np.dtype(method.vision.dtype))).embedding)
  texts = np.asarray(method.text_net.apply({"params": params["text"]}, batch["text"]).embedding)
  valid = batch["has_text"].astype(bool)
  assert 0 < valid.sum() < len(valid)
  clip = _clip_reference(images, texts, float(np.exp(params["logit_scale"])), valid)
  np.testing.assert_allclose(terms["contrastive"], clip, rtol=1e-4)
  np.testing.assert_allclose(total, cfg.contrastive_weight * clip + cfg.dino_weight * dino, rtol=1e-4)
  assert int(new_state["step"]) == 4

  # A weight of 0 leaves its objective out.
  config.loss.dino_weight = 0.0
  only_clip, (terms, _) = methods.build(config, 0, ()).loss(params, state, batch, jax.random.key(1))
  assert "dino" not in terms
  np.testing.assert_allclose(only_clip, clip, rtol=1e-4)


def test_training_moves_the_teacher_and_resumes_identically(folder, tmp_path):
  config = _config(folder, steps=4)
  method = methods.build(config, 0, ())
  straight, history = loop.train(config, str(tmp_path / "straight"), method, show_progress=False)
  loop.train(config, str(tmp_path / "resumed"), method, show_progress=False, stop_at=2)
  resumed, second = loop.train(config, str(tmp_path / "resumed"), method, show_progress=False)
  assert sorted(second) == [3, 4] and all(second[s] == history[s] for s in (3, 4))
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert all(np.isfinite(history[s]["dino"]) and np.isfinite(history[s]["contrastive"]) for s in history)
  fresh = loop.state_setup(config, method).create()
  teacher_moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(fresh.model_state["teacher"]),
                                                           jax.tree.leaves(straight.model_state["teacher"]))]
  assert any(teacher_moved)


@pytest.fixture(scope="module")
def start(folder, tmp_path_factory, tiny):
  """A pretraining run stopped after 2 steps, written as a CLIP directory by jreid.clip_from_run. (The run
  test_training_moves_the_teacher_and_resumes_identically resumes: the same programs, so compiled once.)"""
  run = tmp_path_factory.mktemp("pretrain_run")
  config = _config(folder, steps=4)
  (run / "config.json").write_text(config.to_json_best_effort())
  loop.train(config, str(run), methods.build(config, 0, ()), show_progress=False, stop_at=2)
  clip_from_run(str(run), str(run / "clip"))
  return str(run / "clip")


@pytest.mark.parametrize("make_config", [image_reid_config.get_config, unireid_config.get_config,
                                         instruct_config.get_config, unified_config.get_config,
                                         itkm_config.get_config],
                         ids=["image_reid", "unireid", "instruct", "unified", "itkm"])
def test_the_pretrained_directory_starts_every_method(start, make_config):
  _, pretrained, _ = load_clip(start)
  config = make_config("smoke")
  config.model.init = start
  config.data.update(size="tiny")
  data = load_data(config.data, config.seed)
  method = methods.build(config, data.num_train_ids, training_records(data, config.data.train_modalities))
  params, frozen = method.init(jax.random.key(0), {"image": np.zeros((2, *method.vision.image_size, 3), np.uint8)})
  vision = params["image"]["encoder"]["vision"] if config.method == "itkm" else params["vision"]
  jax.tree.map(np.testing.assert_array_equal, plain_vision(vision), pretrained["vision"])  # less editing layers
  if config.method in ("unireid",):
    jax.tree.map(np.testing.assert_array_equal, params["text"], pretrained["text"])
  if config.method == "itkm":
    jax.tree.map(np.testing.assert_array_equal, frozen["text_tower"], pretrained["text"])


def test_a_corpus_without_captions_is_one_clear_error(tmp_path):
  Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(tmp_path / "a.png")
  config = pretrain_config.get_config("smoke")
  config.corpus.root = str(tmp_path)
  with pytest.raises(ValueError, match="no image of the corpus .* has a caption.*corpus.captions"):
    methods.build(config, 0, ())
