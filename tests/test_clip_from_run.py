"""A UNIReID run's towers as a CLIP directory, and ITKM started from it."""

import jax
import numpy as np
import pytest

from configs import itkm as itkm_config
from configs import unireid as unireid_config
from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.clip_from_run import clip_from_run
from jreid.models import load_clip
from jreid.train import loop


def test_unireid_towers_start_itkm(tmp_path):
  config = unireid_config.get_config("smoke")
  config.train.update(num_steps=1, checkpoint_every=1)
  data = load_data(config.data, config.seed)
  records = training_records(data, config.data.train_modalities)
  run = tmp_path / "unireid"
  run.mkdir()
  (run / "config.json").write_text(config.to_json_best_effort())
  state, _ = loop.train(config, str(run), methods.build(config, data.num_train_ids, records), records,
                        show_progress=False)
  clip_from_run(str(run), str(tmp_path / "clip"))

  _, params, _ = load_clip(str(tmp_path / "clip"))
  jax.tree.map(np.testing.assert_array_equal, params["vision"], jax.device_get(state.params["vision"]))

  itkm = itkm_config.get_config("smoke")
  itkm.model.init = str(tmp_path / "clip")
  method = methods.build(itkm, 0, records)
  start, frozen = method.init(jax.random.key(0), {"image": np.zeros((2, 64, 32, 3), np.uint8)})
  encoder = start["image"]["encoder"]
  jax.tree.map(np.testing.assert_array_equal, encoder["vision"], params["vision"])
  np.testing.assert_array_equal(encoder["patch_embed_1"]["kernel"], params["vision"]["patch_embed"]["kernel"])
  jax.tree.map(np.testing.assert_array_equal, frozen["text_tower"], params["text"])


def test_only_unireid_runs(tmp_path):
  config = itkm_config.get_config("smoke")
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ValueError, match="only UNIReID runs"):
    clip_from_run(str(tmp_path), str(tmp_path / "clip"))
