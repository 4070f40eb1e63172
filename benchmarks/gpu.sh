#!/usr/bin/env bash
# Every GPU measurement, in two parts, each sized for one call of a lent GPU machine (10-minute limit per call):
#   table1  Table 1 on MNIST at full size (paper split, 56,000 / 7,000 / 7,000): hybrid, paper-cnn and simple-cnn with
#           the paper's recipe (25 epochs, Adam 1e-4, batch 64) trained one after another on the GPU, while svm and
#           knn are fitted on the same machine's CPU; `digitrec compare` tables all five, `digitrec report` writes the
#           HTML. Measured on an H100 (2026-11-27): simple-cnn 85 s, paper-cnn 114 s; the hybrid's time is unknown
#           (the call that measured the others ended during it), so this part may need the whole 10 minutes.
#   speed   the speed benchmark (benchmarks/run.py: fast and best presets, the examples/mnist baseline, the input
#           pipeline), each ratio against the baseline of the same run: about 2.5 minutes on an H100.
#
#   DIGITREC_DATA=DIR benchmarks/gpu.sh table1|speed|all   # results in $OUT (the device tool's folder), else benchmarks/results/gpu-run
#   QUICK=1 ...                                             # tiny budgets: checks the script, numbers mean nothing
#
# The machine brings back at most 8 files, so each training run leaves as one archive (no weights) the moment it
# finishes: a call cut off by its time limit keeps what it measured. DIGITREC_GIT_COMMIT names the commit (the copy of
# the tree may travel with stale git metadata). BUDGET_S (default 570) bounds the speed part.
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

quick=(); cquick=(); speed_quick=()
if [[ ${QUICK:-0} == 1 ]]; then
  quick=(--limit 1000 --epochs 1); cquick=(--classical-limit 2000); speed_quick=(--quick --seeds 0)
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || true
python3 -c "import torch, os; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU', '|', os.cpu_count(), 'CPUs')"

if [[ $PART != speed ]]; then
stamp "smoke: the hybrid path on this torch (fails fast rather than after the long runs)"
digitrec train --model hybrid --epochs 1 --limit 256 --no-progress --out "$W/smoke" > "$W/smoke.log" 2>&1 \
  || { cat "$W/smoke.log"; stamp "smoke failed"; exit 3; }

stamp "table 1: svm and knn on the CPU (background), the neural models on the GPU"
digitrec compare --datasets mnist --models svm,knn --threads 8 --no-progress --out "$W/classical" "${cquick[@]}" \
  > "$W/classical.log" 2>&1 &
classical=$!
for m in hybrid paper-cnn simple-cnn; do  # the longest first: it is the one a CPU cannot do in a session
  stamp "train $m"
  digitrec train --preset paper --model "$m" --dataset mnist --no-progress --out "$W/$m-mnist" "${quick[@]}" \
    2>&1 | tee "$W/$m-mnist.log" | tail -n 4
  tar -czf "$R/$m-mnist.tgz" -C "$W" --exclude='*.pt' "$m-mnist" "$m-mnist.log"
done
stamp "waiting for svm/knn"
wait "$classical" || { cat "$W/classical.log"; stamp "classical comparison failed"; }
cat "$W/classical.log"
digitrec compare --datasets mnist --models svm,knn,simple-cnn,paper-cnn,hybrid --no-progress --out "$W/table1-mnist" \
  --reuse "svm=$W/classical/runs/mnist-svm" --reuse "knn=$W/classical/runs/mnist-knn" \
  --reuse "simple-cnn=$W/simple-cnn-mnist" --reuse "paper-cnn=$W/paper-cnn-mnist" --reuse "hybrid=$W/hybrid-mnist"
digitrec report "$W/table1-mnist" --out "$W/report.html"
tar -czf "$R/table1.tgz" -C "$W" --exclude='*.pt' table1-mnist classical report.html classical.log smoke.log
stamp "table 1 done"
fi

[[ $PART == table1 ]] && exit 0
left=$((BUDGET_S - SECONDS))
sections=fast,best,baseline,pipeline
((left < 240)) && sections=fast,pipeline  # the baseline and the 12-epoch preset need about 3 minutes together
stamp "speed benchmark: $sections (${left}s left)"
mkdir -p "$W/speed"
timeout $((left > 30 ? left - 15 : 15)) python3 -m benchmarks.run --only "$sections" --baseline-epochs 6 \
  --work "$W/speed/work" --out "$W/speed/gpu" "${speed_quick[@]}" \
  --note "One GPU; nothing else ran on it during this benchmark." \
  && tar -czf "$R/speed.tgz" -C "$W/speed" gpu.json gpu.md
stamp "done"
