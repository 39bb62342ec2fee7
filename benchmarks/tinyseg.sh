#!/usr/bin/env bash
# The tinyseg recipe (tinyseg-gen-s): the single-frame encoder-decoder of
# mistd.models.detectors.tinyseg, trained from scratch on the mixture of
# benchmarks/configs/tinyseg.yaml (SIRST-V2 train frames and thermal drone
# clips shrunk 2-4x), validated on the SIRST-V2 val split only.
#
#   bash benchmarks/tinyseg.sh train [STEPS [SEED]]   # 2,000 steps, lr 2e-3, seed 0
#   bash benchmarks/tinyseg.sh eval RUN               # SIRST-V2 val (its best-F1 threshold)
#   bash benchmarks/tinyseg.sh ship RUN THRESHOLD     # package it as tinyseg-gen-s
#
# Budgets are steps and seeds (batch 8, 192x192 windows at the frames' own scale, one CPU
# thread: about 0.3 s per step with input_stride 2, 1.4 s without, on this project's 2-core
# machine with a second job beside it).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
case "$1" in
train)
  steps=${2:-2000} seed=${3:-0}
  OMP_NUM_THREADS=1 mistd train --model tinyseg --cfg benchmarks/configs/tinyseg.yaml \
    --no-progress --out "$RUNS" --name "tinyseg-s$seed" "train.max_steps=$steps" \
    "train.seed=$seed" train.warmup_epochs=0.2 data.source_epoch=5000
  ;;
eval)
  OMP_NUM_THREADS=1 mistd eval --weights "$RUNS/$2/weights/last.pt" \
    --data ../shared/data/real/sirst_v2 --select val --out "$RUNS/eval" --name "$2-sirst-val"
  ;;
ship)
  python benchmarks/make_shipped_weights.py --run "tinyseg-gen-s=$RUNS/$2" \
    --threshold "tinyseg-gen-s=${3:?give the threshold chosen on val}" \
    --json "$RUNS/shipped-tinyseg.json"
  ;;
*) echo "usage: $0 train [STEPS [SEED]]|eval RUN|ship RUN THRESHOLD" >&2; exit 2 ;;
esac
