#!/usr/bin/env bash
# Rebuild the shipped camera-model attribution panel from the real corpora (run from the repository root, on a clean
# checkout so the recorded training commit describes the code exactly):
#   bash models/build.sh [DATA] [JOBS]
# DATA defaults to ../shared/data (never copied into the repository): real-dev/ (7 models, flat + natural) and
# real-models/ (10 more models) train one model over 17 classes in one command; real-full/ (full frames of the first
# two photos of each real-models device) is kept out of training (--test-only: those photos' crops go to the test
# split) and measured separately. JOBS runs that many trainings at once (each with one torch thread).
#
# The split is by image within each body (--split-by image, seed 0; 70/15/15 % of each device's photos): one body
# per model for 16 of the 17 models, so a device-disjoint split would leave no test body. The figures are for new
# photos of bodies seen in training.
#
# Each member: the Bondi-style network (width 16: a 64-patch batch stays under 20 ms), 20 epochs of 256 class-
# balanced image draws x 32 patches (Dih4 on, batches mixed from 8 draws), decisions on the best 128 patches of the
# centred 1024x1024 window; ~15 min each on one free core. Recipe probes and why: docs/models.md.
#
# Then: a self-checking export per member (models/<name>.onnx + manifest entry; parity tolerance 1e-3 on 17-class
# log-probabilities), the panel (mean of the members' log-probabilities; open-set threshold calibrated on the
# validation split; identify's default decision), the JPEG signature table (models/jpeg-signatures.json), and
# models/measure_attribution.py, which measures the fused decision (panel + JPEG coding signature, signature table of
# the training photos only), chooses its threshold by nested leave-one-model-out over the training models on the
# validation photos (the panel's decision.fusion) and records it, the
# real-full figures and the open-set folds of models/openset_folds.sh (run it first, or set FOLDS= to skip) in the
# panel's manifest entry.
set -euo pipefail
DATA="${1:-../shared/data}"
JOBS="${2:-2}"
FOLDS="${FOLDS-runs/fold1 runs/fold2 runs/fold3 runs/fold4}"

build() {
  local pre="$1" name="$2"
  camforensics train attributor "$DATA/real-dev" "$DATA/real-models" --split-by image --test-only "$DATA/real-full" \
    -o "runs/$name" --preprocessor "$pre" --architecture bondi --width 16 --epochs 20 --eval-patches 128 --seed 0 \
    --threads 1 --quiet
  camforensics export "runs/$name/best.pt" -o "models/$name.onnx" --tolerance 1e-3
}

export -f build
export DATA
printf '%s\n' "HP attributor-hp" "CC attributor-cc" "RGB attributor-rgb" | xargs -P "$JOBS" -L 1 bash -c 'build $0 $1'
# The single-model default (anonymization judges, --model-less callers of the old API): the member with the highest
# validation image accuracy (ties: HP, CC, RGB); the test split plays no part in the choice.
best=$(python - <<'PY'
import json
models = json.load(open("models/manifest.json"))["models"]
panel = ["attributor-hp", "attributor-cc", "attributor-rgb"]
print(max(panel, key=lambda n: (models[n]["metrics"]["validation"]["image_accuracy"], -panel.index(n))))
PY
)
camforensics export "runs/$best/best.pt" -o "models/$best.onnx" --tolerance 1e-3 --default
camforensics models panel attributor-panel --member attributor-hp --member attributor-cc --member attributor-rgb \
  --split runs/attributor-hp/split.json --default --threads 1
camforensics signatures build "$DATA/real-dev" "$DATA/real-models" -o models/jpeg-signatures.json
folds=()
for f in $FOLDS; do [ -f "$f/best.pt" ] && folds+=("$f"); done
python models/measure_attribution.py --data "$DATA" --panel attributor-panel --json runs/attribution-measures.json \
  --record ${folds:+--folds "${folds[@]}"} \
  --fold-protocol "HP member only, 10 epochs, 64 decision patches (otherwise the panel's recipe), 3 models left out per fold; each fold's signature table from its training photos, fused threshold by nested leave-one-model-out over its training models on its validation photos"
camforensics models list
