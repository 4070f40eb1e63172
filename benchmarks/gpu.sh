#!/usr/bin/env bash
# Every GPU measurement, in two parts, each sized for one call of a lent GPU machine (10-minute limit per call):
#   table1  Table 1 on MNIST at full size (paper split, 56,000 / 7,000 / 7,000) by benchmarks/table1.py: hybrid,
#           paper-cnn and simple-cnn with the paper's recipe (25 epochs, Adam 1e-4, batch 64) trained one after
#           another on the GPU (the hybrid first), each archived the moment it finishes; svm and knn fitted on the
#           machine's CPU; the record, report.html and its screenshot written into $OUT.
#   speed   the speed benchmark (benchmarks/run.py: fast and best presets, the examples/mnist baseline, the input
#           pipeline), each ratio against the baseline of the same run.
#
#   eval "$(python -m benchmarks.provenance --env)"   # on the machine with the checkout: names the commit and tree
#   DIGITREC_DATA=DIR benchmarks/gpu.sh table1|speed|all   # results in $OUT (the device tool's folder), else benchmarks/results/gpu-run
#   QUICK=1 ...                                             # tiny budgets: checks the script, numbers mean nothing
#
# A copy of the tree sent to a lent machine travels without .git: DIGITREC_GIT_COMMIT / _DIRTY / _DIFF_SHA256 (from
# benchmarks.provenance --env) say which code it is, and every record carries them. BUDGET_S (default 570) bounds
# the speed part.
set -uo pipefail
PART=${1:-all}
[[ $PART == table1 || $PART == speed || $PART == all ]] || { echo "usage: benchmarks/gpu.sh table1|speed|all" >&2; exit 2; }
R=${OUT:-benchmarks/results/gpu-run}
W=${WORK:-/tmp/digitrec-gpu}
BUDGET_S=${BUDGET_S:-570}
mkdir -p "$R" && rm -rf "$W" && mkdir -p "$W"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec > >(tee -a "$R/gpu.log") 2>&1
stamp() { echo "[$(date -u +%T) +${SECONDS}s] $*"; }
digitrec() { python3 -m digitrec "$@"; }

quick=(); speed_quick=()
if [[ ${QUICK:-0} == 1 ]]; then
  quick=(--epochs 1 --limit 1000 --classical-limit 2000); speed_quick=(--quick --seeds 0)
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || true
python3 -c "import torch, os; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU', '|', os.cpu_count(), 'CPUs')"

if [[ $PART != speed ]]; then
stamp "smoke: the hybrid path on this torch (fails fast rather than after the long runs)"
digitrec train --model hybrid --epochs 1 --limit 256 --no-progress --out "$W/smoke" > "$W/smoke.log" 2>&1 \
  || { cat "$W/smoke.log"; stamp "smoke failed"; exit 3; }
stamp "table 1: the neural models on the GPU (hybrid first), then svm and knn, the table, the report"
python3 -m benchmarks.table1 --work "$W/table1" --results "$R" --archive "$R" --threads "$(nproc)" --report "${quick[@]}" \
  || stamp "table 1 failed"
stamp "table 1 done"
fi

[[ $PART == table1 ]] && exit 0
left=$((BUDGET_S - SECONDS))
sections=fast,best,baseline,pipeline
((left < 240)) && sections=fast,pipeline  # too little left for the baseline and the best preset, the longest sections
stamp "speed benchmark: $sections (${left}s left)"
mkdir -p "$W/speed"
timeout $((left > 30 ? left - 15 : 15)) python3 -m benchmarks.run --only "$sections" --baseline-epochs 6 \
  --work "$W/speed/work" --out "$W/speed/gpu" "${speed_quick[@]}" \
  --note "One GPU; nothing else ran on it during this benchmark." \
  && tar -czf "$R/speed.tgz" -C "$W/speed" gpu.json gpu.md
stamp "done"
