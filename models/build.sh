#!/usr/bin/env bash
# Rebuild the shipped camera-model attributors from the real-dev corpus (run from the repository root):
#   bash models/build.sh [DATA] [JOBS]
# DATA defaults to ../shared/data/real-dev (never copied into the repository); JOBS runs that many trainings at once
# (each with one torch thread). Each model: train (runs/<name>, git-ignored), then a self-checking export that writes
# models/<name>.onnx and its entry in models/manifest.json (sha256, classes, training command and commit, data
# summary, validation and test metrics). Training is seeded; on this 2-core machine one model takes ~15 min.
set -euo pipefail
DATA="${1:-../shared/data/real-dev}"
JOBS="${2:-2}"
EPOCHS="${EPOCHS:-15}"

build() {
  local pre="$1" name="attributor-$(echo "$1" | tr 'A-Z' 'a-z')"
  camforensics train attributor "$DATA" -o "runs/$name" --preprocessor "$pre" --architecture bondi --width 16 \
    --epochs "$EPOCHS" --seed 0 --threads 1 --quiet
  local default=()
  [ "$pre" = "HP" ] && default=(--default)
  camforensics export "runs/$name/best.pt" -o "models/$name.onnx" "${default[@]}"
}

export -f build
export DATA EPOCHS
printf '%s\n' HP CC RGB | xargs -P "$JOBS" -I{} bash -c 'build {}'
camforensics models list
