"""The default job, the unified model: `python -m jreid.main --config=configs/unified.py[:PRESET]`.

One network for every query kind against a photo gallery: photos
(traditional, clothes-changing, visible-infrared, cross-resolution), photos
plus an instruction (fixed sentence, free description, clothes-template
image), text, sketch, and text plus sketch. It is the Instruct-ReID network
(jreid/methods/instruct/) grown to nine tasks: one image tower for photos,
sketches and clothes templates (model.template.shared), one text tower for
descriptions and instructions, the zero-init gated editing layers for
instructions, UNIReID's sum fusion for text plus sketch, and the BNNeck
feature F for retrieval. Training mixes the tasks by data.task_ratios with
task-aware dynamic weighting over all nine (loss.dynamic; False: fixed
ratios only). Evaluation reports every task under its protocol and the
combined queries with a part missing (eval.missing_modalities).

Presets: 'cpu' (default; small towers on the synthetic set, 1,000 steps:
under 10 minutes on 2 CPU cores), 'smoke' (tiny, for CI), 'gpu' (ViT-B/16 at 256x128, bf16;
--config.model.init=DIR starts from a converted CLIP). Comparison with the
single-method configs: benchmarks/UNIFIED.md.
"""

from ml_collections import ConfigDict

from configs import image_reid, instruct
from jreid.methods.instruct.kinds import ALL_TASKS as TASKS
from jreid.methods.instruct.kinds import ratio_key

PRESETS = image_reid.PRESETS


def get_config(preset: str = "cpu") -> ConfigDict:
  c = instruct.get_config(preset)
  c.method = "unified"
  c.data.train_modalities = ("rgb", "ir", "sketch")  # photos (and low-resolution copies), infrared, sketches
  c.data.tasks = TASKS
  c.data.task_ratios = ConfigDict({ratio_key(task): 1.0 for task in TASKS})
  c.data.mix_mode = "per_batch"
  c.model.template.shared = True
  c.loss.dynamic = True
  c.eval.tasks = TASKS
  c.eval.missing_modalities = True
  if preset == "cpu":
    # Nine tasks cost more per step than one. On 2 CPU cores the conv stem's residual blocks took half of each
    # step: 1,000 steps ran 23.6 min with one per stage, 12.2 min without (traditional 52.8 and 50.6 mAP, the
    # other tasks alike), 9.7 min once each batch skipped the parts its task does not use (README, 2026-12-07).
    c.train.num_steps = 1000
    c.model.vision.stem_blocks = 0
  return c
