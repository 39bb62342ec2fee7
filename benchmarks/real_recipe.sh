#!/usr/bin/env bash
# The real-data recipe (thermal drone clips, $DATA below): every row of the table in docs/results.md
# ("Learned models on real footage") and of the ir model cards is one `mistd train` + `mistd eval`.
#
#   bash benchmarks/real_recipe.sh pretrain            # yolox-s, 1200 steps from scratch
#   bash benchmarks/real_recipe.sh ROW SEED [STEPS [key=value ...]]   # a fine-tune row
#   bash benchmarks/real_recipe.sh eval RUN [full|subset|subset6|cross]   # see below
# TAG=name appends -name to the run name (rows with extra overrides, e.g. train.batch_size=4).
#
# Rows: yolox-ft, mf-baseline, mf-t1 (its architecture on one frame: what the fresh stride-8
# head costs, apart from the frames), mf-residual (the pretrain itself plus a zero-initialised
# temporal residual on P3: every pretrained tensor transfers), chal, chal-no-snf, chal-no-hal, chal-no-crg, and for BP-FPN (which
# acts on the pyramid, so the neck trains there): mf-neck (host), mf-gils, mf-dgr.
# Budgets are steps and seeds (batch 8, 320x256 native frames, width 0.25, T=3); every fine-tune
# starts from the same single-frame pretrain with backbone and neck frozen, so the rows differ
# only in what comes after the per-frame features.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/real/drone_ir}
RUNS=${RUNS:-runs/real}
COMMON=(--data "$DATA" data.train_select=train --val "$DATA" data.val_select=val
  model.width=0.25 "model.input_size=[256,320]" train.batch_size=8 train.epoch_fraction=1
  data.workers=1 data.val_max_frames=570 train.log_interval=10 --no-progress --out "$RUNS")
PRETRAIN=$RUNS/yolox-s-seed0/weights/last.pt

case "$1" in
pretrain)
  mistd train --model yolox-s "${COMMON[@]}" train.max_steps=1200 train.lr=2e-3 train.seed=0 \
    train.checkpoint_interval=100 --name yolox-s-seed0
  ;;
eval)
  # eval RUN [full|subset|subset6|cross]: full val + cross-data (default), every 3rd val clip
  # (19 of 57, ~6k frames), every 6th (10 clips), or only the cross-data sets (never trained on)
  run=$2 mode=${3:-full}
  weights=$RUNS/$run/weights/last.pt
  if [[ "$mode" != cross ]]; then
    select=val
    if [[ "$mode" == subset* ]]; then
      every=3
      [[ "$mode" == subset6 ]] && every=6
      # clips.csv has CRLF line ends
      select=$(awk -F'[,\r]' '$4=="val"{print $1}' "$DATA/clips.csv" | awk "NR%$every==1" \
        | paste -sd, -)
      [[ -n "$select" ]] || { echo "no val clips in $DATA/clips.csv" >&2; exit 2; }
    fi
    mistd eval --weights "$weights" --data "$DATA" --select "$select" --out "$RUNS/eval" \
      --name "$run-val-$mode"
  fi
  if [[ "$mode" == full || "$mode" == cross ]]; then
    # cross-data-set, never trained on: run at the frames' own size (targets keep their pixels)
    mistd eval --weights "$weights" --data ../shared/data/real/anti_uav/4.avi --input-size native \
      --out "$RUNS/eval" --name "$run-antiuav"
    mistd eval --weights "$weights" --data ../shared/data/real/daub_data20/coco_val_DAUB_data20.txt \
      --root ../shared/data/real/daub_data20 --input-size native --out "$RUNS/eval" \
      --name "$run-daub20"
  fi
  ;;
*)
  row=$1 seed=$2 steps=${3:-300}
  shift $(($# < 3 ? $# : 3))
  FT=(--init "$PRETRAIN" train.lr=1e-3 "train.max_steps=$steps" "train.seed=$seed"
    train.checkpoint_interval=50)
  freeze=train.freeze=backbone,neck
  case "$row" in
  yolox-ft) args=(--model yolox-s) ;;
  mf-baseline) args=(--model mf-baseline model.num_frames=3) ;;
  mf-t1) args=(--model mf-baseline model.num_frames=1) ;;  # same head and fold, one frame
  mf-residual) args=(--model mf-residual model.num_frames=3) ;;  # yolox-s + temporal residual
  chal) args=(--model chal model.num_frames=3) ;;
  chal-no-snf) args=(--model chal model.num_frames=3 model.snf=false) ;;
  chal-no-hal) args=(--model chal model.num_frames=3 model.hal=false) ;;
  chal-no-crg) args=(--model chal model.num_frames=3 model.crg=false) ;;
  mf-neck) args=(--model mf-baseline model.num_frames=3) freeze=train.freeze=backbone ;;
  mf-gils) args=(--model mf-baseline model.num_frames=3 model.gils=gils) freeze=train.freeze=backbone ;;
  mf-dgr) args=(--model mf-baseline model.num_frames=3 model.loss.dgr=a) freeze=train.freeze=backbone ;;
  *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  mistd train "${args[@]}" "${COMMON[@]}" "${FT[@]}" "$freeze" "$@" \
    --name "$row-seed$seed-$steps${TAG:+-$TAG}"
  ;;
esac
