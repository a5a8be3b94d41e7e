#!/usr/bin/env bash
# ITKM from jreid's own start (issue 21): CLIP-pretrain on the synthetic corpus (configs/pretrain.py, no identity
# label), write the towers as a CLIP directory, print its pseudo-label quality on the `small` and `dense` sets,
# then the `itkm` plan of benchmarks/learning.py from it, side by side.
# Usage: benchmarks/itkm_pretrained.sh OUT PEER_DIR [STEPS] [learning.py options, e.g. --runs REGEX --timeout S]
# A start already in OUT/start is reused.
set -euo pipefail
out=${1:?usage: benchmarks/itkm_pretrained.sh OUT PEER_DIR [STEPS] [learning.py options]}
peer=${2:?usage: benchmarks/itkm_pretrained.sh OUT PEER_DIR [STEPS] [learning.py options]}
steps=${3:-1500}
shift $(($# < 3 ? $# : 3))
mkdir -p "$out"
if [ ! -f "$out/start/model_config.json" ]; then
  python -m jreid.main --config=configs/pretrain.py --workdir="$out/pretrain" --config.train.num_steps="$steps" \
      --config.data.num_workers=8 > "$out/pretrain.log" 2>&1 || { tail -5 "$out/pretrain.log"; exit 1; }
  python -m jreid.clip_from_run --workdir "$out/pretrain" --dst "$out/start"
fi
for size in small dense; do
  python -m jreid.bench pseudo_labels --init "$out/start" --size "$size" > "$out/pseudo_labels-$size.txt" 2>&1 &
done
python benchmarks/learning.py itkm --out "$out/itkm" --peer "$peer" --init "$out/start" "$@"
wait
