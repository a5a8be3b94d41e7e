"""A trained run's image and text towers as a CLIP model directory: a pretrained start for another method.

    python -m jreid.clip_from_run --workdir RUN --dst DIR [--step N]

RUN is a pretraining run (configs/pretrain.py), a UNIReID run (configs/unireid.py), or an Instruct-ReID or unified run
(configs/instruct.py, configs/unified.py) with the CLIP-style instruction
tower: their image and text towers are a CLIP's (the editing layers of an
instruction-guided image tower are left out; without an instruction it is the
plain ViT). DIR is what `jreid.models.load_clip` reads, so
`--config.model.init=DIR` starts a method from those towers and their
tokenizer. Trained on another synthetic seed (other identities), such a run
stands in for the pretrained CLIP that ITKM starts from.
"""

from __future__ import annotations

import argparse
import sys

import jax

from data_pipelines.datasets import load_data, training_records
from jreid import cli, methods
from jreid.inference import read_run_config
from jreid.models import CLIPConfig, save_clip
from jreid.models.editing import EDITING_PARAMS
from jreid.train import loop

CLIP_METHODS = ("pretrain", "unireid", "instruct", "unified")  # the methods whose image and text towers are a CLIP's


def plain_vision(params: dict) -> dict:
  """An image tower's parameters without the editing layers: a clip.VisionTransformer's."""
  if isinstance(params, dict):
    return {key: plain_vision(value) for key, value in params.items() if key not in EDITING_PARAMS}
  return params


def clip_from_run(workdir: str, dst: str, step: int | None = None) -> None:
  """Writes the image and text towers of the run in `workdir` (latest or given step) to `dst`."""
  config = read_run_config(workdir)
  if config.method not in CLIP_METHODS:
    raise ValueError(f"{workdir!r} is a {config.method!r} run; only pretraining, UNIReID, Instruct-ReID and "
                     "unified runs hold a CLIP image and text tower")
  if config.method in ("instruct", "unified") and config.model.instruction.encoder == "bert":
    raise ValueError(f"{workdir!r}: its instruction tower is BERT, not a CLIP text tower")
  data = load_data(config.data, config.seed)
  method = methods.build(config, data.num_train_ids, training_records(data, config.data.train_modalities))
  state = jax.device_get(loop.restore_state(config, workdir, method, step).params)
  params = {"vision": plain_vision(state["vision"]), "text": state["text"], "logit_scale": state["logit_scale"]}
  save_clip(dst, CLIPConfig(vision=method.vision, text=method.text), params, method.tokenizer)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="the UNIReID, Instruct-ReID or unified run (config.json, checkpoints/)")
  parser.add_argument("--dst", required=True, help="the CLIP model directory to write")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  args = parser.parse_args(argv)
  cli.guarded(lambda: clip_from_run(args.workdir, args.dst, args.step))
  print(f"wrote {args.dst}; start a run from it with --config.model.init={args.dst}")


if __name__ == "__main__":
  main(sys.argv[1:])
