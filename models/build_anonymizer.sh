#!/usr/bin/env bash
# Build a targeted anonymizer (Cama, width 16; the trial run of docs/models.md, NOT shipped: targeted success at
# chance, 31 dB mean PSNR) from the real-dev corpus and measure it with the shipped
# attributors (run from the repository root, on a clean checkout so the recorded training commit describes the code):
#   bash models/build_anonymizer.sh [DATA]
# DATA defaults to ../shared/data/real-dev (never copied into the repository). Training is seeded and uses the
# attributors' split (same seed and split settings), so the test images are unseen by the anonymizer and the judges.
# About 20-25 minutes on one core of this 2-core machine; the judged measurement about as long again.
set -euo pipefail
DATA="${1:-../shared/data/real-dev}"
camforensics train anonymizer "$DATA" -o runs/anonymizer-cama --kind targeted --width 16 --epochs 20 \
  --evaluator-epochs 8 --images-per-epoch 32 --patches-per-image 64 --batch-size 32 --threads 1 --seed 0
camforensics export runs/anonymizer-cama/best.pt -o models/anonymizer-cama.onnx
python bench/bench_anonymizer.py runs/anonymizer-cama --model anonymizer-cama --targets-per-image 2 \
  --json runs/anonymizer-cama/judged.json
python bench/bench_anonymizer.py runs/anonymizer-cama --model anonymizer-cama --targets-per-image 2 \
  --remosaic-baseline --json runs/anonymizer-cama/judged-remosaic-baseline.json
