"""A trained dual-encoder run as a CLIP model directory: a pretrained start for another method.

    python -m jreid.clip_from_run --workdir RUN --dst DIR [--step N]

RUN is a UNIReID run (`python -m jreid.main --config=configs/unireid.py`): its
image and text towers are a CLIP's. DIR is what `jreid.models.load_clip`
reads, so `--config.model.init=DIR` starts a method from those towers and
their tokenizer. UNIReID with instance positives and no identity loss (its
defaults) learns from image-caption pairs alone; trained on another synthetic
seed (other identities) it stands in for the pretrained CLIP that ITKM starts
from.
"""

from __future__ import annotations

import argparse
import sys

import jax

from data_pipelines.datasets import load_data, training_records
from jreid import methods
from jreid.inference import read_run_config
from jreid.models import CLIPConfig, save_clip
from jreid.train import loop

TOWERS = ("vision", "text", "logit_scale")


def clip_from_run(workdir: str, dst: str, step: int | None = None) -> None:
  """Writes the image and text towers of the UNIReID run in `workdir` (latest or given step) to `dst`."""
  config = read_run_config(workdir)
  if config.method != "unireid":
    raise ValueError(f"{workdir!r} is a {config.method!r} run; only UNIReID runs hold a CLIP image and text tower")
  data = load_data(config.data, config.seed)
  method = methods.build(config, data.num_train_ids, training_records(data, config.data.train_modalities))
  state = loop.restore_state(config, workdir, method, step)
  params = jax.device_get({name: state.params[name] for name in TOWERS})
  save_clip(dst, CLIPConfig(vision=method.vision, text=method.text), params, method.tokenizer)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="the UNIReID training run (config.json, checkpoints/)")
  parser.add_argument("--dst", required=True, help="the CLIP model directory to write")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  args = parser.parse_args(argv)
  clip_from_run(args.workdir, args.dst, args.step)
  print(f"wrote {args.dst}; start a run from it with --config.model.init={args.dst}")


if __name__ == "__main__":
  main(sys.argv[1:])
