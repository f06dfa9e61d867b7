#!/usr/bin/env bash
# Train and ship the surrogate attributors of the transfer refinement (anonymize --method transplant --refine):
#   bash models/build_surrogates.sh [SHARED_DATA]
# (run from the repository root; SHARED_DATA defaults to ../shared/data). The 17 camera models of real-dev and
# real-models are linked file by file into runs/surrogate-data (with both MANIFEST.csv merged, so the classes are
# spelled as the judges spell them; nothing is copied; it is also the DATA17 of `evaluate anonymization`). Each
# surrogate is trained (one torch thread; run it under `nice -n 10`; 5-20 min each on this shared 2-core machine)
# and its weights (no optimiser state) are written to models/surrogates/NAME.pt with a manifest entry marked
# "role": "surrogate" (training command, data summary, validation and test accuracy).
#
# Independent of the judges (models/attributor-*.onnx: Bondi network, HP / CC / RGB, width 16, seed 0), as the issue
# states it: every surrogate has another seed than every judge (never the judges' weights), and every surrogate
# that shares a judge's preprocessor and architecture is trained on the judges' own training split (never on a
# photo the judges hold out). Relation to the judges:
#   surrogate-fd         Bondi,  FD preprocessor (no judge reads FD), seed 101, 8 epochs
#   surrogate-hp-resnet  ResNet, HP preprocessor (the HP judge is a Bondi net), seed 202, 10 epochs
#   surrogate-cc-resnet  ResNet, CC preprocessor (the CC judge is a Bondi net), seed 303, 8 epochs
#   surrogate-rgb-resnet ResNet, RGB input (the RGB judge is a Bondi net), seed 404, 8 epochs
#   surrogate-hp-bondi   Bondi,  HP: the HP judge's family and preprocessor, another seed (505), 12 epochs
#   surrogate-cc-bondi   Bondi,  CC: the CC judge's family and preprocessor, another seed (606), 10 epochs
#   surrogate-rgb-bondi  Bondi,  RGB: the RGB judge's family and input, another seed (707), 10 epochs
#   surrogate-hp-bondi-2, surrogate-cc-bondi-2, surrogate-rgb-bondi-2: a second Bondi net of the judges' family per
#                        preprocessor, seeds 808 / 909 / 1010, 12 / 10 / 10 epochs (fifth session: a larger ensemble
#                        of the judges' family, in the default ensemble until the tenth session; docs/models.md)
#   surrogate-hp-bondi-rob Bondi, HP, seed 1313, 12 epochs, "slightly robust": fast adversarial training within
#                        0.05 grey levels (--adversarial-eps; Springer et al. 2021); since the tenth session the
#                        default ensemble's only HP net (the five: it and the CC / RGB Bondi nets; docs/models.md)
# (the Bondi nets of the HP / CC / RGB judges' family: the standard black-box transfer setting, which transfers better than other architectures; the
# others keep the ensemble diverse, for judges we do not ship). The first two were trained on their own seeded
# split of the linked folder (which may hold some of the judges' test photos in its training part); the others on
# the judges' own split (runs/judge-split.json: the split `train attributor --split-by image --seed 0 --test-only
# real-full` makes for the judges, regenerated here), so they never train on a photo the judges held out.
set -euo pipefail
DATA="${1:-../shared/data}"
LINKS=runs/surrogate-data
rm -rf "$LINKS" && mkdir -p "$LINKS"
for set in real-dev real-models; do
  root=$(cd "$DATA/$set" && pwd)
  while IFS= read -r -d '' f; do
    rel="${f#"$root"/}"
    mkdir -p "$LINKS/$(dirname "$rel")"
    ln -s "$f" "$LINKS/$rel"
  done < <(find "$root" -mindepth 3 -type f -print0)
done
{ cat "$DATA/real-dev/MANIFEST.csv"; tail -n +2 "$DATA/real-models/MANIFEST.csv"; } > "$LINKS/MANIFEST.csv"

# The judges' split (models/build.sh trains them with --split-by image --seed 0 --test-only real-full).
python - "$DATA" <<'PY'
import sys
from pathlib import Path
from camforensics.training.attributor import AttributorConfig, make_split
d = Path(sys.argv[1])
make_split([d / "real-dev", d / "real-models"], "auto", AttributorConfig(seed=0, split_by="image"), None,
           test_only=[d / "real-full"]).save("runs/judge-split.json")
PY

ship() {
  local name="$1" pre="$2" arch="$3" seed="$4" epochs="$5" draws="$6" data="$7" weight="${8:-1}" extra="${9:-}"
  local cmd="camforensics train attributor $data -o runs/$name --preprocessor $pre --architecture $arch --width 16 --epochs $epochs --images-per-epoch $draws --seed $seed --threads 1${extra:+ $extra} --quiet"
  $cmd
  python -c "import sys; from camforensics.training.transfer import ship_surrogate; ship_surrogate(sys.argv[1], 'models/surrogates', sys.argv[2], command=sys.argv[3], weight=float(sys.argv[4]))" \
    "runs/$name/best.pt" "$name" "$cmd" "$weight"
}
# The eighth argument: the ensemble weight of `--refine surrogates` (the default ensemble, chosen on the judges'
# validation photos, docs/models.md: since the tenth session the five Bondi nets of the judges' family with the
# slightly robust HP net as the only HP one; the others are used when named); the ninth: further training flags.
ship surrogate-fd FD bondi 101 8 256 "$LINKS --single-device split_images" 0
ship surrogate-hp-resnet HP resnet 202 10 256 "$LINKS --single-device split_images" 0
JUDGE_DATA="$DATA/real-dev $DATA/real-models --split runs/judge-split.json"
ship surrogate-cc-resnet CC resnet 303 8 256 "$JUDGE_DATA" 0
ship surrogate-rgb-resnet RGB resnet 404 8 256 "$JUDGE_DATA" 0
ship surrogate-hp-bondi HP bondi 505 12 256 "$JUDGE_DATA" 0
ship surrogate-cc-bondi CC bondi 606 10 256 "$JUDGE_DATA"
ship surrogate-rgb-bondi RGB bondi 707 10 256 "$JUDGE_DATA"
ship surrogate-hp-bondi-2 HP bondi 808 12 256 "$JUDGE_DATA" 0
ship surrogate-cc-bondi-2 CC bondi 909 10 256 "$JUDGE_DATA"
ship surrogate-rgb-bondi-2 RGB bondi 1010 10 256 "$JUDGE_DATA"
# slightly robust (tenth session): fast adversarial training within 0.05 grey levels (L_inf, on the pixels)
ship surrogate-hp-bondi-rob HP bondi 1313 12 256 "$JUDGE_DATA" 1 "--adversarial-eps 0.05"
# LGV collections (eleventh session; Gubri et al. 2022, camforensics/training/lgv.py): each shipped Bondi net of the
# default ensemble continued for 5 epochs of the judges' training split with SGD at a constant learning rate of
# 5e-4 (momentum 0.9; the largest of 3e-4, 5e-4, 1e-3, 3e-3 whose snapshots kept the start net's validation
# accuracy, docs/models.md), 2 weight snapshots per epoch: one file of 10 snapshots, of which the refinement
# differentiates one per step. Measured on the judges' validation photos and not shipped (no gain, docs/models.md):
# `ship_lgv NAME START SEED 0` rebuilds one into models/surrogates (weight 0: used only when named), as measured
# with: ship_lgv surrogate-cc-bondi-lgv surrogate-cc-bondi 1616; ship_lgv surrogate-hp-bondi-rob-lgv
# surrogate-hp-bondi-rob 1717; ship_lgv surrogate-rgb-bondi-lgv surrogate-rgb-bondi 1818.
ship_lgv() {
  local name="$1" start="$2" seed="$3" weight="${4:-0}"
  local cmd="camforensics train lgv models/surrogates/$start.pt $JUDGE_DATA -o runs/$name --epochs 5 --snapshots-per-epoch 2 --images-per-epoch 256 --optimizer sgd --learning-rate 0.0005 --seed $seed --threads 1 --quiet"
  $cmd
  python -c "import sys; from camforensics.training.transfer import ship_surrogate; ship_surrogate(sys.argv[1], 'models/surrogates', sys.argv[2], command=sys.argv[3], weight=float(sys.argv[4]))" \
    "runs/$name/lgv.pt" "$name" "$cmd" "$weight"
}
