"""A UNIReID or unified run's towers as a CLIP directory, and ITKM started from it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import itkm as itkm_config
from configs import unified as unified_config
from configs import unireid as unireid_config
from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.clip_from_run import clip_from_run
from jreid.models import load_clip
from jreid.models.clip import VisionTransformer
from jreid.models.editing import EditingVisionTransformer
from jreid.train import loop


def _train_one_step(config, run):
  config.train.update(num_steps=1, checkpoint_every=1)
  data = load_data(config.data, config.seed)
  records = training_records(data, config.data.train_modalities)
  run.mkdir()
  (run / "config.json").write_text(config.to_json_best_effort())
  method = methods.build(config, data.num_train_ids, records)
  state, _ = loop.train(config, str(run), method, show_progress=False)
  return method, records, state


def test_unireid_towers_start_itkm(tmp_path):
  _, records, state = _train_one_step(unireid_config.get_config("smoke"), tmp_path / "unireid")
  clip_from_run(str(tmp_path / "unireid"), str(tmp_path / "clip"))

  _, params, _ = load_clip(str(tmp_path / "clip"))
  jax.tree.map(np.testing.assert_array_equal, params["vision"], jax.device_get(state.params["vision"]))

  itkm = itkm_config.get_config("smoke")
  itkm.model.init = str(tmp_path / "clip")
  method = methods.build(itkm, 0, records)
  start, frozen = method.init(jax.random.key(0), {"image": np.zeros((2, 64, 32, 3), np.uint8)})
  encoder = start["image"]["encoder"]
  jax.tree.map(np.testing.assert_array_equal, encoder["vision"], params["vision"])
  jax.tree.map(np.testing.assert_array_equal, encoder["patch_embed_1"], params["vision"]["patch_embed"])
  jax.tree.map(np.testing.assert_array_equal, frozen["text_tower"], params["text"])


def test_unified_run_gives_its_unedited_image_tower(tmp_path):
  method, _, state = _train_one_step(unified_config.get_config("smoke"), tmp_path / "unified")
  clip_from_run(str(tmp_path / "unified"), str(tmp_path / "clip"))
  model, params, tokenizer = load_clip(str(tmp_path / "clip"))
  config = model.config
  assert config.vision == method.vision and config.text == method.text
  assert tokenizer.vocab_size == method.tokenizer.vocab_size
  jax.tree.map(np.testing.assert_array_equal, params["text"], jax.device_get(state.params["text"]))
  # The plain ViT on the written parameters is the editing tower given no instruction.
  images = jax.random.uniform(jax.random.key(1), (3, *method.vision.image_size, 3))
  plain = VisionTransformer(config.vision).apply({"params": params["vision"]}, images)
  no_instruction = (jnp.zeros((3, 1, method.vision.width)), jnp.zeros((3, 1), bool))
  edited = EditingVisionTransformer(method.vision).apply({"params": state.params["vision"]}, images, *no_instruction)
  np.testing.assert_allclose(plain.embedding, edited.embedding, atol=1e-6)
  assert "gate" in str(jax.tree_util.tree_structure(state.params["vision"]))
  assert "gate" not in str(jax.tree_util.tree_structure(params["vision"]))


def test_only_runs_with_clip_towers(tmp_path):
  config = itkm_config.get_config("smoke")
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ValueError, match="only pretraining, UNIReID, Instruct-ReID and unified runs"):
    clip_from_run(str(tmp_path), str(tmp_path / "clip"))
