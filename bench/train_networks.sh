#!/usr/bin/env bash
# Every network on the demo's synthetic dataset with the same fixed budget: the loss must fall
# and the validation Dice is reported per network (a table at the end).
#   bench/train_networks.sh [BUILD_DIR] [OUT_DIR]
# Budget: 12 cases of 32^3 (fold 0 of 4: 9 train, 3 validate), patch 32^3, batch 2, Adam lr 1e-3,
# 6 epochs x 20 iterations; U-Net-like networks 3 levels, 16 base channels, UX-Net 16 base.
set -euo pipefail
build=${1:-build}
out=${2:-/tmp/voxcl-train-networks}
voxcl="$build/voxcl"
rm -rf "$out" && mkdir -p "$out"
"$voxcl" synth --out "$out/ds" --cases 12 --size 32,32,32 --seed 3 > /dev/null
common=(--dataset "$out/ds" --patch 32,32,32 --batch 2 --epochs 6 --iters-per-epoch 20 --optimizer adam --lr 1e-3
        --folds 4 --fold 0 --levels 3 --base 16)
run() {
  local name=$1; shift
  local t0=$(date +%s)
  "$voxcl" train "${common[@]}" --out "$out/$name" "$@" > "$out/$name.log" 2>&1 || { echo "$name: FAILED (see $out/$name.log)"; tail -3 "$out/$name.log"; return 1; }
  local t1=$(date +%s)
  # training_log.csv: epoch,train_loss,val_dice,...
  local first last dice
  first=$(awk -F, 'NR == 2 {print $2}' "$out/$name/training_log.csv")
  last=$(awk -F, 'END {print $2}' "$out/$name/training_log.csv")
  dice=$(awk -F, 'END {print $3}' "$out/$name/training_log.csv")
  printf "%-22s loss %7.4f -> %7.4f   validation mean Dice %6.4f   %4d s\n" "$name" "$first" "$last" "$dice" $((t1 - t0))
}
status=0
run unet3d --model unet3d || status=1
run dualnorm-unet --model dualnorm-unet || status=1
run invres-partial --model invres-partial || status=1
run invres-full --model invres-full || status=1
run invres-full+vae --model invres-full --vae || status=1
run uxnet --model uxnet || status=1
exit $status
