"""UNIReID: `python -m jreid.main --config=configs/unireid.py[:PRESET]`.

Text, sketch and text+sketch queries against photos with one dual encoder
(METHODS.md, UNIReID). Presets: 'cpu' (default; small towers on the synthetic
set, under ten minutes on two cores), 'smoke' (tiny, for tests), 'gpu'
(ViT-B/16 image tower at 256x128 and a CLIP-size text tower, bf16; give a
converted CLIP with --config.model.init=DIR for the paper's initialisation).
Ablations: --config.loss.dynamic=False, --config.loss.align_weight=0,
--config.loss.positives=identity, --config.loss.id_weight=1.0,
--config.model.fusion=weighted|cross_attention, --config.data.sketches=drawn.
"""

from ml_collections import ConfigDict

from configs import image_reid

PRESETS = image_reid.PRESETS


def get_config(preset: str = "cpu") -> ConfigDict:
  c = image_reid.get_config(preset)
  c.method = "unireid"

  c.data.num_ids, c.data.num_instances = 16, 2  # 32 photos, each with a caption and a sketch
  c.data.train_modalities = ("rgb", "sketch")  # rows: captioned photos; sketches pair with them
  # Colours and garments are what captions describe: no colour jitter, grayscale or erasing.
  c.data.augment = ConfigDict(dict(padding=8, flip=True, erasing=0.0, color_jitter=0.0, grayscale=0.0))
  c.data.sketches = "dataset"  # each photo's sketch: 'dataset' (the data's, else drawn) or 'drawn' (always)

  # vocab_size: the local BPE's target size (the converted model's tokenizer when model.init is set).
  c.model.text = ConfigDict(dict(
      vocab_size=1024, context_length=56, width=128, layers=3, heads=4, mlp_dim=256, embed_dim=128))
  c.model.fusion = "sum"  # 'sum' (the paper), 'weighted' (learned gates), 'cross_attention'
  c.model.fusion_heads = 4

  c.loss = ConfigDict(dict(
      positives="instance",  # InfoNCE positives: 'instance' (the paper) or 'identity' (same person)
      dynamic=True, dynamic_alpha=1.0, dynamic_gamma=3.5, dynamic_stop_gradient=False,
      align_weight=0.5,
      id_weight=0.0, label_smoothing=0.1))

  c.optim.update(lr=1e-3, warmup_steps=50, weight_decay=0.05)
  c.train.update(num_steps=1500)
  c.eval.tasks = ("text", "sketch", "text+sketch")

  if preset == "smoke":
    c.data.num_ids, c.data.num_instances = 4, 2
    c.model.vision.update(image_size=(64, 32), patch_size=16, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=32)
    c.model.text.update(context_length=48, width=32, layers=1, heads=2, mlp_dim=64, embed_dim=32, vocab_size=600)
    c.model.fusion_heads = 2
    c.train.update(num_steps=10)
  elif preset == "gpu":
    c.data.num_ids, c.data.num_instances = 32, 2
    c.model.vision.update(image_size=(256, 128), patch_size=16, width=768, layers=12, heads=12, mlp_dim=3072,
                          embed_dim=512, dtype="bfloat16")
    c.model.text.update(vocab_size=8192, context_length=77, width=512, layers=12, heads=8, mlp_dim=2048,
                        embed_dim=512)
    c.model.fusion_heads = 8
    # The paper's recipe (Adam, lr 1e-5, 60 epochs) fine-tunes CLIP; from scratch a larger lr is needed.
    c.optim.update(lr=1e-4, warmup_steps=500, weight_decay=0.05)
    c.train.update(num_steps=12000)
  return c
