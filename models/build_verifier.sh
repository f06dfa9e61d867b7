#!/usr/bin/env bash
# Rebuild the shipped Siamese same-device verifier (run from the repository root, on a clean checkout so the
# recorded training commit describes the code exactly):
#   bash models/build_verifier.sh [DATA]
# DATA defaults to ../shared/data/real-dev (never copied into the repository). One torch thread: on a shared
# 2-core machine two torch threads wait on each other whenever one is preempted (epochs ran 9x slower). Everything it writes besides the
# model and its manifest entry goes under runs/ (git-ignored). Training and every draw are seeded.
#
# Data (device-disjoint; real-dev has 8 devices of 7 models):
#   train       Apple iPhone 4, Samsung GT-P5210, Wiko Ridge 4G (real) + 32 simulated devices of 8 simulated
#               models (camforensics simulate, 16 natural + 8 flat-field 512x512 images each) for volume;
#   validation  Samsung GT-I9300, Samsung SM-J330F: per-epoch model choice (1+1 pairs, the hardest size) and the
#               calibration of the fusion with PRNU and of the thresholds;
#               Negatives are mostly (0.8) pairs of two devices of one model (the simulated models have 4 devices
#               each), so that model traces (JPEG, demosaicing) cannot separate them and the network has to compare
#               sensor noise; the learning rate is kept low (3e-4): on held-out real devices the validation AUC fell
#               when the network drifted far from its initial, correlation-like comparison (real-only training:
#               0.89 -> 0.54 in three epochs while the training accuracy rose to 0.81).
#   test        LG D605 and both vivo iQOO U1x bodies (a same-model pair: the hard negative), never seen before
#               the final measurement (manifest metrics.test, and 'camforensics evaluate verification' below).
set -euo pipefail
DATA="${1:-../shared/data/real-dev}"
WORK=runs/verifier-data
NAME=verifier-ww
mkdir -p "$WORK"

camforensics simulate "$WORK/sim-train" --models 8 --devices 32 --images 16 --flat 8 --size 512x512 --seed 11 \
  --quiet --report "$WORK/sim-train.json"
camforensics datasets split "$DATA" -o "$WORK/split.json" \
  --validation-devices Samsung_GT-I9300_0,Samsung_SM-J330F_0 \
  --test-devices LG_D605_0,vivo_iQOO-U1x_0,vivo_iQOO-U1x_1
camforensics train siamese "$DATA" -o "runs/$NAME" --extra-train "$WORK/sim-train" --split "$WORK/split.json" \
  --epochs 10 --pairs-per-epoch 2048 --same-model-fraction 0.8 --learning-rate 3e-4 --val-set-size 1 --val-pairs 256 --val-positions 32 --calibration-pairs 96 \
  --seed 0 --threads 1 --quiet
camforensics export "runs/$NAME/best.pt" -o "models/$NAME.onnx" --default
camforensics models info "$NAME"
# The held-out measurement quoted in the README: 1+1, 4+4 and 10+10 pairs of the test devices.
camforensics evaluate verification "$DATA" --model "$NAME" --set-sizes 1,4,10 --pairs 40 -o "runs/$NAME-evaluation" \
  --report "runs/$NAME-evaluation/report.json"
