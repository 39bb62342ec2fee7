#!/usr/bin/env bash
# What only a CUDA GPU can show, in one short run (~5 min on one H100/H200): training on CUDA in
# fp32 / bf16 / fp16 autocast (loss finite, checkpoint written, a run resumed), the multi-frame
# models started from it, torchrun with NCCL, the shipped weights evaluated on CUDA (compare with
# the same command with DEVICE=cpu: the metrics must agree), and CUDA training throughput.
#
#   bash benchmarks/gpu_check.sh [OUT]                # default OUT: runs/gpu_check
#   DEVICE=cpu STEPS=4 bash benchmarks/gpu_check.sh /tmp/gc    # every command, on a CPU
#
# A failing step is recorded as FAILED (its log is in OUT) and the others still run; the summary
# table is printed at the end and written to OUT/summary.md. Not run by CI (no GPU there).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-60}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.md
printf '| check | result | seconds |\n|---|---|---|\n' >"$SUMMARY"
COMMON=(--no-progress --out "$OUT/train" train.device="$DEVICE" data.workers=2
  train.batch_size=8 train.log_interval=10 data.val_max_frames=64 model.width=0.25)

last_value() {  # last_value CSV COLUMN: the column's value in the CSV's last row
  python3 -c 'import csv, sys; rows = list(csv.DictReader(open(sys.argv[1])))
print(rows[-1].get(sys.argv[2], "?") if rows else "?")' "$1" "$2" 2>/dev/null || echo "?"
}

check() {  # check NAME LOG RESULT_COMMAND -- COMMAND...: run COMMAND, add a summary row
  local name=$1 log=$2 result=$3 start=$SECONDS
  shift 4
  if "$@" >"$OUT/$log" 2>&1; then
    echo "| $name | $(eval "$result") | $((SECONDS - start)) |" | tee -a "$SUMMARY"
  else
    echo "| $name | FAILED (rc $?, $log) | $((SECONDS - start)) |" | tee -a "$SUMMARY"
    tail -5 "$OUT/$log"
  fi
}

python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
mistd data synth --out "$OUT/synth" --preset easy --sequences 8 --frames 40 --size 256x256 \
  --overwrite >"$OUT/synth.log" 2>&1 || { tail "$OUT/synth.log"; exit 1; }

for amp in off bf16 fp16; do
  check "train yolox-s $STEPS steps, amp $amp: val mAP50" "train-yolox-$amp.log" \
    "last_value $OUT/train/yolox-$amp/results.csv mAP50" -- \
    mistd train --model yolox-s --data "$OUT/synth" "${COMMON[@]}" train.amp=$amp \
    train.max_steps="$STEPS" --name "yolox-$amp"
done
check "resume the bf16 run to $((2 * STEPS)) steps: val mAP50" resume.log \
  "last_value $OUT/train/yolox-bf16/results.csv mAP50" -- \
  mistd train --resume "$OUT/train/yolox-bf16" train.max_steps=$((2 * STEPS)) --no-progress
for model in mf-baseline chal; do
  check "train $model T=3 from it, $STEPS steps bf16: val mAP50" "train-$model.log" \
    "last_value $OUT/train/$model/results.csv mAP50" -- \
    mistd train --model $model model.num_frames=3 --init "$OUT/train/yolox-bf16/weights/last.pt" \
    --data "$OUT/synth" "${COMMON[@]}" train.amp=bf16 train.max_steps="$STEPS" --name $model
done
if [[ "$DEVICE" == cuda* ]]; then
  check "torchrun (NCCL, 1 process), 20 steps: val mAP50" ddp.log \
    "last_value $OUT/train/ddp/results.csv mAP50" -- \
    python3 -m torch.distributed.run --standalone --nproc_per_node=1 -m mistd.cli train --model yolox-s \
    --data "$OUT/synth" "${COMMON[@]}" train.max_steps=20 --name ddp
fi

# the shipped weights on the shipped real clip, streamed (the one evaluation loop), scored
# class-agnostically (the papers' protocol)
metrics() {
  python3 - "$1" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m = m.get("breakdown", {}).get("class_agnostic", m) | {"ms_per_frame": m["ms_per_frame"]}
print("mAP50 %.2f, F1 %.2f, %.1f ms/frame" % (100 * m["mAP50"], 100 * m["f1"], m["ms_per_frame"]))
EOF
}
for weights in yolox-ir-s mf-residual-ir-s chal-ir-s; do
  check "eval $weights on the demo clip, $DEVICE" "eval-$weights.log" \
    "metrics $OUT/eval-$weights.json" -- \
    mistd eval --weights $weights --data src/mistd/assets/demo --device "$DEVICE" \
    --json "$OUT/eval-$weights.json" --out "$OUT/eval" --name "$weights"
done

check "eval chal-ir-s --confirm-tracks, $DEVICE" eval-confirm.log "metrics $OUT/eval-confirm.json" -- \
  mistd eval --weights chal-ir-s --data src/mistd/assets/demo --device "$DEVICE" --confirm-tracks \
  --json "$OUT/eval-confirm.json" --out "$OUT/eval" --name confirm
check "track yolox-ir-s, $DEVICE" track.log "grep -i -m1 -A2 hota $OUT/track.log | tail -1 | tr -s ' '" -- \
  mistd track --weights yolox-ir-s src/mistd/assets/demo --device "$DEVICE" --no-video \
  --out "$OUT/track" --name yolox

# training throughput at full widths (docs/results.md, "Training throughput", has the CPU figures)
for amp in off bf16; do
  check "train_throughput.py batch 16, 256x256, amp $amp" "throughput-$amp.log" \
    "grep -E 'yolox-s|mf-baseline' $OUT/throughput-$amp.log | tr -s ' ' | paste -sd ';'" -- \
    python3 benchmarks/train_throughput.py --device "$DEVICE" --models yolox-s mf-baseline \
    --size 256 --batch 16 --steps 10 --amp $amp
done
echo
cat "$SUMMARY"
