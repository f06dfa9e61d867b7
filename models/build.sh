#!/usr/bin/env bash
# Rebuild the shipped camera-model attributors from the real-dev corpus (run from the repository root, on a clean
# checkout so the recorded training commit describes the code exactly):
#   bash models/build.sh [DATA] [JOBS]
# DATA defaults to ../shared/data/real-dev (never copied into the repository); JOBS runs that many trainings at once
# (each with one torch thread). Each model: train (runs/<name>, git-ignored), then a self-checking export that writes
# models/<name>.onnx and its entry in models/manifest.json (sha256, classes, training command and commit, data
# summary, validation and test metrics). Training is seeded.
#
# The panel: the same Bondi-style network (width 16) with three preprocessors, HP, CC and RGB, 15 epochs each
# (~8 min each on one core of this 2-core machine). identify's default is the panel member with the highest
# validation image accuracy (ties: the order HP, CC, RGB); the test split plays no part in the choice.
#
# Batches pool the patches of 8 image draws (`--mix-images 8`, the default since 2026-11-25; the panel before then
# was trained on batches of one or two images' patches and reached 0.42-0.67 test accuracy, now 0.72-0.75).
set -euo pipefail
DATA="${1:-../shared/data/real-dev}"
JOBS="${2:-2}"

build() {
  local pre="$1" name="$2"
  camforensics train attributor "$DATA" -o "runs/$name" --preprocessor "$pre" --architecture bondi --width 16 \
    --epochs 15 --seed 0 --threads 1 --quiet
  camforensics export "runs/$name/best.pt" -o "models/$name.onnx"
}

export -f build
export DATA
printf '%s\n' "HP attributor-hp" "CC attributor-cc" "RGB attributor-rgb" | xargs -P "$JOBS" -L 1 bash -c 'build $0 $1'
best=$(python - <<'PY'
import json
models = json.load(open("models/manifest.json"))["models"]
panel = ["attributor-hp", "attributor-cc", "attributor-rgb"]
print(max(panel, key=lambda n: (models[n]["metrics"]["validation"]["image_accuracy"], -panel.index(n))))
PY
)
camforensics export "runs/$best/best.pt" -o "models/$best.onnx" --default
camforensics models list
