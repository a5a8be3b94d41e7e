"""Instruct-ReID: `python -m jreid.main --config=configs/instruct.py[:PRESET]`.

One model for six tasks, each a query image plus an instruction (METHODS.md,
Instruct-ReID): traditional, clothes-changing and visible-infrared ReID with
fixed-sentence instructions, text-to-image ReID, clothes-template and
language-instructed ReID. Presets: 'cpu' (default; small towers on the
synthetic set and the image tower of configs/image_reid.py: 1500 steps in about
11 minutes on two busy cores, 2 minutes of evaluation), 'smoke' (tiny, for tests),
'gpu' (ViT-B/16 at 256x128, bf16; give a converted CLIP with
--config.model.init=DIR for a pretrained start).

Single-task training: --config.data.tasks="('clothes_template',)" (and the
same for --config.eval.tasks). Results: benchmarks/INSTRUCT.md. Ablations: --config.model.editing=False (plain
ViT), --config.loss.adaptive=False (plain batch-hard triplet). BERT
instructions: --config.model.instruction.encoder=bert
--config.model.instruction.bert=DIR (`python -m jreid.convert bert`).
"""

from ml_collections import ConfigDict

from configs import image_reid
from jreid.methods.instruct.kinds import TASK_KINDS as TASKS
from jreid.methods.instruct.kinds import ratio_key

PRESETS = image_reid.PRESETS


def get_config(preset: str = "cpu") -> ConfigDict:
  c = image_reid.get_config(preset)
  c.method = "instruct"

  c.data.train_modalities = ("rgb", "ir")  # templates and descriptions come with the photos
  c.data.tasks = TASKS  # the training tasks (their rows: jreid.methods.instruct.tasks.task_records)
  c.data.task_ratios = ConfigDict({ratio_key(task): 1.0 for task in TASKS})
  c.data.mix_mode = "per_batch"  # 'per_batch': one task per batch, drawn by ratio; 'mixed': all in every batch

  c.model.editing = True  # False: a plain ViT (the instruction reaches F_out only)
  # The CLIP-style text tower of sentence instructions and captions (vocab_size: the local BPE's target size);
  # its embed_dim is the image tower's.
  c.model.text = ConfigDict(dict(vocab_size=1024, context_length=64, width=128, layers=2, heads=4, mlp_dim=256))
  # The image tower of clothes-template instructions (embed_dim and dtypes: the image tower's).
  # shared=True: templates go through the image tower instead (at its image size; the rest is unused).
  c.model.template = ConfigDict(dict(shared=False, image_size=(64, 32), patch_size=16, width=128, layers=2,
                                     heads=4, mlp_dim=256))
  # encoder: 'clip_text' (the text tower above, or model.init's) or 'bert' (a converted BERT directory).
  c.model.instruction = ConfigDict(dict(encoder="clip_text", bert=""))
  c.model.fusion = ConfigDict(dict(layers=1, heads=4, mlp_dim=256))

  c.loss = ConfigDict(dict(
      adaptive=True,  # False: the same triplets with relatedness 1 on every same-identity pair (plain triplet)
      triplet_margin=0.3,  # the maximal margin m
      intra_weight=1.0,  # weight of the (anchor, positive, positive) triplets
      squared_distance=False,  # the paper's d is squared L2; the released code (and ours) use L2
      triplet_weight=1.0, id_weight=1.0, label_smoothing=0.1,
      contrastive_weight=1.0, matching_weight=1.0,
      # Task-aware dynamic weighting over the tasks (jreid/losses/task_weighting.py; UNIReID's form for N
      # tasks): each row's losses times alpha (1 + w_task)^gamma, w from the tasks' running confidences.
      dynamic=False, dynamic_alpha=1.0, dynamic_gamma=3.5, dynamic_momentum=0.9))

  c.eval.tasks = TASKS
  c.mesh.rules = c.mesh.rules + (
      (r"attn/instruction_(key|value)/kernel$", (None, "model")),
      (r"attn/instruction_(key|value)/bias$", ("model",)),
      (r"attn/gate$", ("model",)),
  )

  if preset == "smoke":
    c.data.num_ids, c.data.num_instances = 4, 2
    c.model.text.update(vocab_size=600, context_length=48, width=32, layers=1, heads=2, mlp_dim=64)
    c.model.template.update(width=32, layers=1, heads=2, mlp_dim=64)
    c.model.fusion.update(heads=2, mlp_dim=64)
  elif preset == "gpu":
    c.data.num_ids, c.data.num_instances = 32, 4
    c.model.text.update(vocab_size=8192, context_length=77, width=512, layers=12, heads=8, mlp_dim=2048)
    c.model.template.update(image_size=(128, 64), width=768, layers=12, heads=12, mlp_dim=3072)
    c.model.fusion.update(heads=12, mlp_dim=3072)
    # The paper fine-tunes pretrained towers at 1e-5 (4e-5 jointly); from scratch a larger lr is needed.
    c.optim.update(lr=1e-4, warmup_steps=1000, weight_decay=5e-4)
  return c
