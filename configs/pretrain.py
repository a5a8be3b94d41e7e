"""Pretraining the towers without labels: `python -m jreid.main --config=configs/pretrain.py[:PRESET]`.

Image-text contrastive (CLIP) and, by weight, DINO self-distillation over multi-crop
views (METHODS.md, 'Pretraining the towers'; jreid/methods/pretrain.py) on an
unlabeled corpus: the synthetic corpus of corpus.num_ids identities (disjoint
from every evaluation seed), or every image under --config.corpus.root with
captions from --config.corpus.captions (a CUHK-PEDES-style JSON). The data
section names the evaluation set (zero-shot retrieval of its tasks).
Presets: 'cpu' (default; the small towers of the other cpu presets, 1,500 steps: minutes on a GPU,
hours on a laptop CPU), 'smoke' (tiny, for tests), 'gpu'
(ViT-B/16 at 256x128 and a CLIP-size text tower, bf16).
A batch is data.num_ids x data.num_instances corpus images (no identities).
The start for another method: `python -m jreid.clip_from_run --workdir RUN --dst DIR`,
then `--config.model.init=DIR`.
"""

from ml_collections import ConfigDict

from configs import unireid

PRESETS = unireid.PRESETS


def get_config(preset: str = "cpu") -> ConfigDict:
  c = unireid.get_config(preset)
  c.method = "pretrain"
  del c.data["sketches"], c.model["fusion"], c.model["fusion_heads"]

  c.corpus = ConfigDict(dict(root="", captions="", num_ids=2000, seed=0, photos_per_outfit=4, shard_size=250,
                             num_workers=0))  # num_workers 0: all cores render the synthetic corpus
  c.data.num_ids, c.data.num_instances = 64, 1
  c.data.crops = ConfigDict(dict(local_size=(48, 24), num_local=4, global_scale=(0.4, 1.0), local_scale=(0.05, 0.4),
                                 jitter=0.4, jitter_probability=0.8, grayscale=0.2, blur=(1.0, 0.1, 0.5),
                                 solarize=0.2))
  c.model.dino_head = ConfigDict(dict(num_prototypes=1024, hidden_dim=512, bottleneck=128, layers=3))
  # DINO's weight is 0 by measurement: on the synthetic corpus it learned the camera scenes (zero-shot mAP
  # under chance) and, added to CLIP, cost 4.6 traditional mAP (benchmarks/PRETRAIN.md). Set it to combine.
  c.loss = ConfigDict(dict(contrastive_weight=1.0, dino_weight=0.0, teacher_momentum=0.996,
                           teacher_temperature=(0.04, 0.07), teacher_warmup_steps=300, student_temperature=0.1,
                           centre_momentum=0.9))
  c.optim.update(lr=5e-4, warmup_steps=100, weight_decay=0.04)
  c.train.update(num_steps=1500)  # benchmarks/PRETRAIN.md
  c.eval.tasks = ()  # zero-shot: every task of the data its towers encode (image, sketch and text queries)

  if preset == "smoke":
    c.corpus.update(num_ids=4, photos_per_outfit=2, shard_size=4, num_workers=1)
    c.data.num_ids, c.data.num_workers = 8, 0
    c.data.crops.update(local_size=(32, 16), num_local=2)
    c.model.dino_head.update(num_prototypes=64, hidden_dim=32, bottleneck=16)
    c.loss.teacher_warmup_steps = 5
    c.optim.warmup_steps = 2
    c.train.update(num_steps=10)
  elif preset == "gpu":
    c.corpus.num_ids = 20000
    c.data.num_ids = 256
    c.data.crops.update(local_size=(128, 64), num_local=6)
    c.model.dino_head.update(num_prototypes=16384, hidden_dim=2048, bottleneck=256)
    c.loss.teacher_warmup_steps = 3000
    c.optim.update(lr=5e-4, warmup_steps=1000, weight_decay=0.04)
    c.train.update(num_steps=30000, checkpoint_every=2000)
  return c
