#!/usr/bin/env bash
# The generalist recipe (yolox-gen-s): one single-frame YOLOX-S with a stride-4 level, trained on
# the mixture of benchmarks/configs/generalist.yaml (thermal drone clips at their own scale and
# shrunk 2-4x, SIRST-V2 train frames, synthetic 2-5 px targets painted into both, burned-in
# overlays as negatives), validated per source on the drone_ir and SIRST-V2 val splits only.
#
#   bash benchmarks/generalist.sh stage1     # 1,500 steps from yolox-ir-s, lr 2e-3, seed 0
#   bash benchmarks/generalist.sh stage2     # 1,200 more steps, lr 1e-3, seed 1 (paints + overlays)
#   bash benchmarks/generalist.sh ship 0.3   # package it with its val-chosen threshold
#   bash benchmarks/generalist.sh p2 on|off [STEPS [SEED]]   # the stride-4 level at equal steps:
#       the mixture from yolox-ir-s, 600 steps, lr 2e-3, seed 0, model.p2 on or off
#   bash benchmarks/generalist.sh eval RUN    # the tiny-target sets (DAUB data20, SIRST-V2 val)
#
# Budgets are steps and seeds (batch 8, 256x256 windows at the frames' own scale, width 0.25, one
# CPU thread). Stage 1 ran an earlier form of the mixture: the drone_ir, drone_ir_small and
# sirst_v2 sources only, weights 0.35 / 0.25 / 0.4, no painted targets, no overlays (STAGE1=1
# below reproduces it); stage 2 runs the config as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
CFG=benchmarks/configs/generalist.yaml
COMMON=(--model yolox-s --cfg "$CFG" --no-progress --out "$RUNS")
case "$1" in
stage1)
  STAGE1_SOURCES='data.sources=[{name: drone_ir, path: ../shared/data/real/drone_ir, select: train, weight: 0.35, val: ../shared/data/real/drone_ir, val_select: val}, {name: drone_ir_small, path: ../shared/data/real/drone_ir, select: train, weight: 0.25, scale: [2.0, 4.0]}, {name: sirst_v2, path: ../shared/data/real/sirst_v2, select: train, weight: 0.4, val: ../shared/data/real/sirst_v2, val_select: val}]'
  OMP_NUM_THREADS=1 mistd train "${COMMON[@]}" --init yolox-ir-s "$STAGE1_SOURCES" data.overlay=0 \
    train.max_steps=1500 train.seed=0 --name gen-p2-seed0
  ;;
stage2)
  OMP_NUM_THREADS=1 mistd train "${COMMON[@]}" --init "$RUNS/gen-p2-seed0/weights/last.pt" \
    train.max_steps=1200 train.lr=1e-3 train.seed=1 --name gen-p2-stage2
  ;;
ship)
  python benchmarks/make_shipped_weights.py --run "yolox-gen-s=$RUNS/gen-p2-stage2" \
    --threshold "yolox-gen-s=${2:?give the threshold chosen on val}" --json "$RUNS/shipped.json"
  ;;
p2)
  p2=$([[ "$2" == on ]] && echo true || echo false)
  # SEED (default 0) other than 0 adds -seedN to the run name
  seed=${4:-0} suffix=$([[ "${4:-0}" == 0 ]] || echo "-seed${4}")
  OMP_NUM_THREADS=1 mistd train "${COMMON[@]}" --init yolox-ir-s "model.p2=$p2" \
    "train.max_steps=${3:-600}" "train.seed=$seed" --name "p2-$2-${3:-600}$suffix"
  ;;
eval)
  W=$RUNS/$2/weights/last.pt REAL=../shared/data/real
  OMP_NUM_THREADS=1 mistd eval --weights "$W" --data "$REAL/daub_data20/coco_val_DAUB_data20.txt" \
    --root "$REAL/daub_data20" --out "$RUNS/eval" --name "$2-daub20"
  OMP_NUM_THREADS=1 mistd eval --weights "$W" --data "$REAL/sirst_v2" --select val \
    --out "$RUNS/eval" --name "$2-sirst-val"
  ;;
*) echo "usage: $0 stage1|stage2|ship THRESHOLD|p2 on|off [STEPS [SEED]]|eval RUN" >&2; exit 2 ;;
esac
