#!/usr/bin/env bash
# Build the SiamTE-style trace eraser (the 2026-11-25 trial of docs/models.md, NOT shipped: mean PSNR 31.6 dB on
# real-dev natural images, worst 19.1 dB) from the real-dev corpus and measure it with the shipped attributors (run from
# the repository root, on a clean checkout so the recorded training commit describes the code):
#   bash models/build_eraser.sh [DATA]
# DATA defaults to ../shared/data/real-dev (never copied into the repository). Training is seeded and uses the
# attributors' split (same seed and split settings), so the test images are unseen by the eraser and the judges.
# About 25 minutes on one core of this 2-core machine (24 embedding epochs of 4,096 patches, then 10 eraser epochs).
set -euo pipefail
DATA="${1:-../shared/data/real-dev}"
camforensics train anonymizer "$DATA" -o runs/anonymizer-erase --kind erase --width 16 --depth 6 --epochs 34 \
  --evaluator-epochs 24 --images-per-epoch 64 --patches-per-image 64 --batch-size 32 --erase-max-change 3 --threads 1 --seed 0
camforensics export runs/anonymizer-erase/best.pt -o models/anonymizer-erase.onnx
python bench/bench_anonymizer.py runs/anonymizer-erase --model anonymizer-erase --threads 2 --json runs/anonymizer-erase/judged.json
