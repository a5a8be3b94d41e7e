#!/usr/bin/env bash
# ITKM from jreid's own start (issue 21): CLIP-pretrain on the synthetic corpus (no identity label), write the
# towers as a CLIP directory, measure its pseudo-label quality, then ITKM(M), ITKM(S) per scenario and the
# ablations M1, M3, M5 from it, side by side, on seed 0. Usage: benchmarks/itkm_pretrained.sh OUT [STEPS]
set -uo pipefail
out=${1:?usage: benchmarks/itkm_pretrained.sh OUT [STEPS]}; steps=${2:-2500}
mkdir -p "$out"
python -m jreid.main --config=configs/pretrain.py --workdir="$out/pretrain" --config.corpus.num_ids=2000 \
    --config.loss.dino_weight=0.0 --config.train.num_steps="$steps" --config.data.num_workers=8 \
    --config.eval.missing_modalities=False > "$out/pretrain.log" 2>&1 || { tail -5 "$out/pretrain.log"; exit 1; }
python -m jreid.clip_from_run --workdir "$out/pretrain" --dst "$out/start" || exit 1
python -m jreid.bench pseudo_labels --init "$out/start" > "$out/pseudo_labels.txt" 2>&1 &
m1=(--config.itkm.scenario_embedding=False --config.itkm.separation_weight=0 --config.itkm.dru=False
    --config.itkm.cluster_matching=image --config.itkm.ihm=False)
m3=(--config.itkm.dru=False --config.itkm.cluster_matching=image --config.itkm.ihm=False)
m5=(--config.itkm.ihm=False)
declare -A runs=(
  [itkm-M]="" [itkm-S-vi]="--config.itkm.scenarios=('visible_infrared',)"
  [itkm-S-cc]="--config.itkm.scenarios=('clothes_change',)" [itkm-S-cr]="--config.itkm.scenarios=('cross_resolution',)"
  [M1]="${m1[*]}" [M3]="${m3[*]}" [M5]="${m5[*]}")
for name in "${!runs[@]}"; do
  # shellcheck disable=SC2086
  timeout "${ITKM_TIMEOUT:-1800}" python -m jreid.main --config=configs/itkm.py --config.model.init="$out/start" \
      --workdir="$out/$name" ${runs[$name]} > "$out/$name.log" 2>&1 &
done
wait
