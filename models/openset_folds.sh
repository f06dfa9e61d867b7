#!/usr/bin/env bash
# Open-set folds of the attribution panel (run from the repository root; ~7 min each on one free core):
#   bash models/openset_folds.sh [DATA] [JOBS]
# Four folds, each leaving 3 of the 17 camera models out of training and validation (--leave-out): their photos
# are all in the fold's test split as "unknown". The left-out models were drawn once, seeded:
#   random.Random(0).shuffle(sorted(models)); folds = the first four groups of three (12 of the 17 models).
# Cheaper than the panel (a training per fold): the HP member only, 10 epochs, otherwise the panel's recipe
# (models/build.sh). models/measure_attribution.py --folds runs/fold1 ... runs/fold4 measures each fold's
# rates per cue: the fold model's own threshold (calibrated on its validation split), the JPEG signature (tables of
# no training photo), and the fused decision (the CNN restricted to the cameras that write the file's coding, its
# threshold chosen by nested leave-one-model-out over the fold's training models on its validation photos), each
# fold's signature table built from its training photos only. On a shared machine run the folds one at a time: JOBS=1.
set -euo pipefail
DATA="${1:-../shared/data}"
JOBS="${2:-2}"

fold() {
  local name="$1"; shift
  local args=()
  for m in "$@"; do args+=(--leave-out "$m"); done
  camforensics train attributor "$DATA/real-dev" "$DATA/real-models" --split-by image --test-only "$DATA/real-full" \
    -o "runs/$name" --preprocessor HP --architecture bondi --width 16 --epochs 10 --seed 0 --threads 1 --quiet \
    "${args[@]}"
}
export -f fold
export DATA
printf '%s\n' \
  "fold1|Apple iPhone 8|Samsung SM-J330F|Canon EOS 6D" \
  "fold2|vivo iQOO U1x|Nikon D70|Apple iPhone 6s" \
  "fold3|Nikon D3000|Canon IXUS 125 HS|Nikon D90" \
  "fold4|Wiko RIDGE 4G|Canon PowerShot S100|Huawei DUK-AL20" |
  xargs -P "$JOBS" -I{} bash -c 'IFS="|" read -r -a a <<< "{}"; fold "${a[@]}"'
