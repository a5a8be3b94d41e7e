"""A method's image tower starts from a converted CLIP directory, position grid resized."""

import jax
import numpy as np

from configs import image_reid
from jreid import methods
from jreid.models import CLIPConfig, TextConfig, VisionConfig, build_local_tokenizer, init_params, save_clip
from jreid.models.pos_embed import resize_pos_embed
from jreid.train import loop


def test_image_reid_initialises_from_converted_clip(tmp_path):
  vision = VisionConfig(image_size=(32, 32), patch_size=16, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=16)
  text = TextConfig(vocab_size=520, context_length=8, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=16,
                    eot_token_id=519)
  clip_config = CLIPConfig(vision=vision, text=text)
  params = init_params(clip_config, jax.random.key(1))
  tokenizer = build_local_tokenizer(["a person in a red coat"] * 4, str(tmp_path / "tok"), vocab_size=520)
  save_clip(str(tmp_path / "clip"), clip_config, params, tokenizer)

  config = image_reid.get_config("smoke")
  config.model.init = str(tmp_path / "clip")
  config.model.vision.image_size = (64, 32)  # grid 2x2 -> 4x2
  method = methods.build(config, num_classes=5)
  got, _ = method.init(jax.random.key(0), {"image": np.zeros((2, 64, 32, 3), np.uint8)})

  want = jax.tree_util.tree_map(np.asarray, params["vision"])
  want["pos_embedding"] = resize_pos_embed(want["pos_embedding"], (2, 2), (4, 2))
  assert got["vision"]["pos_embedding"].shape == (1 + 8, 32)
  for a, b in zip(jax.tree_util.tree_leaves(got["vision"]), jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(np.asarray(a), b, rtol=0, atol=1e-7)
  assert got["head"]["classifier"]["kernel"].shape == (16, 5)
  # The trainer builds its state from the same init under jax tracing.
  state = loop.state_setup(config, method).create()
  np.testing.assert_allclose(np.asarray(state.params["vision"]["pos_embedding"]), want["pos_embedding"], atol=1e-7)
