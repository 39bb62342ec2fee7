#!/usr/bin/env bash
# The CHAL ablation where CHAL claims to help: tiny targets in clutter, as video.
#
#   bash benchmarks/chal_tiny_ablation.sh [STEPS [SEED ...]]   # default: 150 steps, seeds 0 1
#   python benchmarks/chal_tiny_table.py table "$RUNS" --markdown   # the table (also printed)
#
# Variants: `chal` (full), `chal-no-snf` (model.snf=false: temporal-mean background),
# `chal-no-hal` (model.hal=false: the key frame's reconstruction residual as the anomaly),
# `chal-no-crg` (model.crg=false: plain amplification F * (1 + A)), `mf-baseline` (none of the
# three), and `chal-p2` (model.p2=true: the full model plus a stride-4 head level; its new level
# and head branch start fresh). Step-matched: the same data (benchmarks/configs/chal_tiny.yaml: drone_ir train clips
# shrunk 2-4x, half of them with 1-3 painted 2-5 px moving targets; 160x160 windows, T=3,
# width 0.25), steps, batch 8, lr 1e-3 and seeds. Every parameter trains (no freezing: the
# per-frame features have to learn targets a quarter of the size they were trained on).
#
# Starts: the CHAL variants all from `chal-ir-s` (the full model after the same drone_ir recipe;
# an ablated variant loads every tensor it has, its removed part is simply absent, and only the
# class layer, 4 classes -> 1, starts fresh), mf-baseline from `mf-baseline-ir-s` (same recipe:
# yolox-ir-s's backbone and PAFPN, its own fold, fusion and head trained 300 steps on drone_ir).
#
# Idempotent: a run with weights/last.pt is not trained again, a measurement already written is
# not redone (delete it to redo). Each run is then measured on DAUB data20 (real 2-5 px targets
# over ground clutter, `mistd eval` at the frames' own size; a measurement only, never used to
# choose anything) and on the drone_ir val clips shrunk 2x and 4x
# (`benchmarks/chal_tiny_table.py score`). One CPU thread per process.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/chal_tiny}
STEPS=${1:-150}
shift $(($# > 0 ? 1 : 0))
SEEDS=("$@")
[[ ${#SEEDS[@]} -gt 0 ]] || SEEDS=(0 1)
REAL=../shared/data/real
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

variant_args() {
  case "$1" in
  chal) echo "--model chal --init chal-ir-s" ;;
  chal-no-snf) echo "--model chal --init chal-ir-s model.snf=false" ;;
  chal-no-hal) echo "--model chal --init chal-ir-s model.hal=false" ;;
  chal-no-crg) echo "--model chal --init chal-ir-s model.crg=false" ;;
  mf-baseline) echo "--model mf-baseline --init mf-baseline-ir-s" ;;
  chal-p2) echo "--model chal --init chal-ir-s model.p2=true" ;;
  esac
}

mkdir -p "$RUNS/eval"
for seed in "${SEEDS[@]}"; do
  for variant in chal chal-no-snf chal-no-hal chal-no-crg mf-baseline chal-p2; do
    run=$variant-seed$seed
    if [[ ! -f "$RUNS/$run/weights/last.pt" ]]; then
      rm -rf "${RUNS:?}/$run" # an unfinished run starts over (same seed, same draws)
      # shellcheck disable=SC2046
      mistd train $(variant_args "$variant") --cfg benchmarks/configs/chal_tiny.yaml \
        --no-progress --out "$RUNS" --name "$run" "train.max_steps=$STEPS" "train.seed=$seed" \
        >"$RUNS/$run.log" 2>&1
    fi
    if [[ ! -f "$RUNS/eval/$run-daub20/metrics.json" ]]; then
      rm -rf "${RUNS:?}/eval/$run-daub20"
      mistd eval --weights "$RUNS/$run/weights/last.pt" \
        --data "$REAL/daub_data20/coco_val_DAUB_data20.txt" --root "$REAL/daub_data20" \
        --out "$RUNS/eval" --name "$run-daub20" >"$RUNS/eval/$run-daub20.log" 2>&1
    fi
    if [[ ! -f "$RUNS/eval/$run-drone-val-shrunk.json" ]]; then
      python benchmarks/chal_tiny_table.py score "$RUNS/$run" --frames "${FRAMES:-171}" \
        >"$RUNS/eval/$run-drone-val-shrunk.log" 2>&1
    fi
    echo "$(date -u +%H:%M:%S) $run done"
  done
done
python benchmarks/chal_tiny_table.py table "$RUNS" --markdown
