"""Image-only ReID (one image tower, identity + triplet losses): `python -m jreid.main --config=configs/image_reid.py`.

Also the base every other config builds on (data, image tower, optimizer,
mesh, training and evaluation sections). Presets: 'cpu' (default; a small
model on the synthetic set, minutes on a laptop CPU), 'smoke' (under a
minute, for CI), 'gpu' (ViT-B/16 at 256x128, bf16). Any key can be
overridden: --config.train.num_steps=2000.
"""

from ml_collections import ConfigDict

PRESETS = ("cpu", "smoke", "gpu")


def get_config(preset: str = "cpu") -> ConfigDict:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
  c = ConfigDict()
  c.preset = preset
  c.method = "image_reid"
  c.seed = 0

  c.data = ConfigDict()
  c.data.name = "synthetic"
  c.data.size = "small"
  c.data.root = ""  # '' = the synthetic cache directory; a dataset root for real data
  c.data.options = ()  # a real dataset's reader options, 'key=value': ('variant=detected',), ('trial=2',)
  c.data.num_ids = 8  # P identities per batch
  c.data.num_instances = 4  # K images per identity
  c.data.num_workers = 2
  c.data.train_modalities = ("rgb", "ir", "sketch")  # clothes templates show no person
  c.data.balance_modalities = ()
  # An unreadable training image: 'skip' trains on another image of its identity (a warning names the file,
  # the count is printed at the end of training); 'fail' stops the run naming the file.
  c.data.on_bad_image = "skip"
  # Random erasing, colour jitter and grayscale slow a small from-scratch ViT down too much for the CPU
  # budget (benchmarks/CPU_PRESET.md); the gpu preset turns them on.
  c.data.augment = ConfigDict(dict(padding=8, flip=True, erasing=0.0, color_jitter=0.0, grayscale=0.0,
                                   channel_exchange=0.0))

  c.model = ConfigDict()
  c.model.init = ""  # '' = random init; or a directory written by `python -m jreid.convert clip`
  c.model.vision = ConfigDict(dict(
      image_size=(96, 48), patch_size=8, width=128, layers=4, heads=4, mlp_dim=256, embed_dim=128,
      dtype="float32", param_dtype="float32",
      # From scratch a ViT learns far better on convolutions than on linear patches (benchmarks/LEARNING.md);
      # a converted CLIP (model.init) brings its own linear patch embedding.
      stem="conv", stem_width=32, stem_blocks=1, pool="token"))  # jreid/models/clip.py: VisionConfig

  c.loss = ConfigDict(dict(id_weight=1.0, triplet_weight=1.0, triplet_margin=0.3, label_smoothing=0.1))

  c.optim = ConfigDict(dict(
      name="adamw", lr=1e-3, warmup_steps=50, warmup_init_lr=1e-5, schedule="cosine", min_lr=1e-5,
      step_milestones=(), step_gamma=0.1, weight_decay=5e-4, b1=0.9, b2=0.999, eps=1e-8,
      # Clip the global gradient norm: from scratch, rare steps with gradients 100-10,000x the usual size
      # otherwise blow up the triplet distances and stop training (benchmarks/LEARNING.md).
      grad_clip=1.0,
      param_groups=[dict(pattern=r"(bias|scale|embedding|cls|pos)", weight_decay=0.0)]))

  # Device mesh (jreid/train/sharding.py): axis sizes, -1 = all remaining devices. Parameters
  # matching a rule (regex over 'vision/transformer/blocks_0/mlp/fc1/kernel' style paths) get its
  # per-dimension axes (size-1 axes are ignored); then FSDP shards the largest dimension divisible
  # by `fsdp` of parameters with >= fsdp_min_size elements. The rules split attention heads and
  # the MLP over `model` (tensor parallelism) when model > 1.
  c.mesh = ConfigDict()
  c.mesh.shape = ConfigDict(dict(data=-1, fsdp=1, model=1))
  c.mesh.fsdp_min_size = 2**16
  c.mesh.rules = (
      (r"attn/(query|key|value)/kernel$", (None, "model")),
      (r"attn/(query|key|value)/bias$", ("model",)),
      (r"attn/out/kernel$", ("model", None)),
      (r"mlp/fc1/kernel$", (None, "model")),
      (r"mlp/fc1/bias$", ("model",)),
      (r"mlp/fc2/kernel$", ("model", None)),
  )

  c.train = ConfigDict(dict(num_steps=1500, log_every=20, checkpoint_every=200, max_checkpoints=2))
  # One compiled step per combination of the network's parts a batch uses (the methods that have such parts:
  # Instruct-ReID, unified). On 2 CPU cores the unified default job went from 12.2 to 9.7 min; on a GPU, with
  # other runs beside it, each compile took minutes and eight 1,000-step runs did not get past compiling in
  # 440 s (benchmarks/LEARNING.md), so only the cpu preset compiles them.
  c.train.step_variants = preset == "cpu"

  c.eval = ConfigDict(dict(
      tasks=(),  # empty: the dataset's own tasks (jreid.eval.tasks.task_names)
      batch_size=128, picture_queries=6, picture_topk=8,
      missing_modalities=False,  # also evaluate combined queries with a part missing (jreid/eval/tasks.py)
      # Evaluation during training (jreid/train/evaluation.py): every N steps (0 = only after training), and
      # select=True reports the state of the best mean mAP among those evaluations instead of the last.
      every=0, select=False))

  if preset == "smoke":
    c.data.size = "tiny"
    c.data.num_ids, c.data.num_instances, c.data.num_workers = 4, 4, 0
    c.model.vision.update(image_size=(64, 32), patch_size=16, width=32, layers=1, heads=2, mlp_dim=64,
                          embed_dim=32, stem_width=8)
    c.optim.warmup_steps = 2
    c.train.update(num_steps=10, log_every=5, checkpoint_every=5)
    c.eval.batch_size = 32
  elif preset == "gpu":
    c.data.size = "large"
    c.data.num_ids, c.data.num_workers = 32, 12
    c.data.augment.update(erasing=0.5, color_jitter=0.2, grayscale=0.1)
    c.model.vision.update(image_size=(256, 128), patch_size=16, width=768, layers=12, heads=12, mlp_dim=3072,
                          embed_dim=512, dtype="bfloat16", stem="patch", stem_blocks=0)  # CLIP ViT-B/16's layout
    c.optim.update(lr=3.5e-4, warmup_steps=500)
    c.train.update(num_steps=12000, log_every=100, checkpoint_every=2000)
    c.eval.batch_size = 512
  return c
