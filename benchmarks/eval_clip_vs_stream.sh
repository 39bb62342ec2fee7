#!/usr/bin/env bash
# `mistd eval --weights` before and after the one streamed evaluation loop (issue "one inference
# path"): the same weights (mf-baseline-synth-s, from git history) on anti_uav/4.avi, scored by the
# last commit that ran clip mode window by window (04b9f5a) and by this checkout; CPU time of each
# (user + sys, /usr/bin/time), interleaved ROUNDS times. Needs the git history (a full clone).
#
#   bash benchmarks/eval_clip_vs_stream.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
data=${DATA:-../shared/data/real/anti_uav/4.avi}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/before" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/before" 04b9f5a
git show 63166c2:src/mistd/weights/mf-baseline-synth-s.pt > "$work/weights.pt"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for round in $(seq "$rounds"); do
  for side in stream clip; do
    src=$PWD/src
    [[ $side == clip ]] && src=$work/before/src
    echo "round $round $side: load $(cut -d' ' -f1-3 /proc/loadavg)"
    PYTHONPATH=$src /usr/bin/time -o "$work/time" \
      -f "round $round $side: cpu %U s user + %S s sys, wall %e s" \
      mistd eval --weights "$work/weights.pt" --data "$data" --project "$work/runs" \
      --name "$side-$round" > "$work/$side-$round.log" 2>&1
    cat "$work/time"
    python - "$work/runs/$side-$round/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"  mAP50 {100 * m['mAP50']:.2f}  F1 {100 * m['f1']:.2f}")
PY
  done
done
