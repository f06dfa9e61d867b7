#!/usr/bin/env bash
# Build the shipped camera profiles (models/profiles/*.npz: statistics only, no photo) of the 17 camera models of
# real-dev and real-models (run from the repository root):
#   bash models/build_profiles.sh [SHARED_DATA]
# SHARED_DATA defaults to ../shared/data. Each profile reads the flat-field photos of its model and every other
# natural photo (sorted by name: the 1st, 3rd, 5th, ...; a model with fewer than 16 natural photos and no flat field
# gets a profile from 4 to 7 photos, below the command's default minimum of 8); the other natural photos are held out for
# `camforensics evaluate anonymization`, which skips every photo whose sha256 a profile records. The camera model's
# name is the photos' EXIF make and model (as the attributors spell their classes). One report per profile goes to
# runs/profiles/ (git-ignored).
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=models/profiles
mkdir -p "$OUT" runs/profiles
for set in real-dev real-models; do
  for dev in "$DATA/$set"/*/; do
    model=$(basename "$dev" | sed 's/_[0-9]*$//')
    printf '%s\n' "$model"
  done
done | sort -u | while read -r model; do
  files=()
  while IFS= read -r f; do files+=("$f"); done < <(
    { find "$DATA"/real-dev/"$model"_* "$DATA"/real-models/"$model"_* -path '*/flat/*' -type f 2>/dev/null || true
      find "$DATA"/real-dev/"$model"_* "$DATA"/real-models/"$model"_* -path '*/nat/*' -type f 2>/dev/null | sort | awk 'NR % 2 == 1' || true
    } | sort)
  min=$(( ${#files[@]} < 8 ? ${#files[@]} : 8 ))  # iPhone 8, EOS 6D ...: 8-15 natural photos, half of them held out
  camforensics profile "${files[@]}" -o "$OUT/$model.npz" --min-photos "$min" --fit-stride 2 --report "runs/profiles/$model.json" --quiet
  echo "$model: ${#files[@]} photos"
done
