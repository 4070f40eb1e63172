#!/usr/bin/env bash
# The paper's Table 1 (and Figures 1–2) on MNIST, full size: svm, knn, simple-cnn, paper-cnn and hybrid (the paper's
# CNN + ResNet-18 "proposed model") on the paper's 80/10/10 split, then one self-contained HTML report and its
# screenshot, copied to benchmarks/results/. The hybrid's 25 epochs take ~5 h on 2 CPU cores (minutes on a GPU): stop
# the script any time and table what exists with TRAIN=0 ALLOW_UNFINISHED=1; a rerun resumes it.
#
#   DIGITREC_DATA=/work/shared/data benchmarks/table1.sh [WORK_DIR]
#
# Neural runs are trained with `digitrec train` (paper preset, 25 epochs) in WORK_DIR and taken into the table
# with --reuse; rerunning the script resumes them. PAPER_RUN names an existing paper-cnn run to use instead
# (default: WORK_DIR/paper-cnn-mnist). ALLOW_UNFINISHED=1 tables runs still training (marked unfinished).
# TRAIN=0 skips training (table what exists). THREADS (default 1) caps torch/BLAS threads.
set -euo pipefail
WORK=${1:-runs/table1}
THREADS=${THREADS:-1}
TRAIN=${TRAIN:-1}
PAPER_RUN=${PAPER_RUN:-$WORK/paper-cnn-mnist}
OUT=benchmarks/results
mkdir -p "$WORK" "$OUT"

train() {  # MODEL RUN_DIR: the paper recipe, resumed if the folder already holds a run
  local resume=()
  [[ -f "$2/last.pt" ]] && resume=(--resume)
  [[ -f "$2/metrics.json" ]] && return 0
  nice -n 10 digitrec train --preset paper --model "$1" --dataset mnist --threads "$THREADS" --no-progress \
    --out "$2" "${resume[@]}"
}
if [[ "$TRAIN" == 1 ]]; then
  train simple-cnn "$WORK/simple-cnn-mnist"
  [[ "$PAPER_RUN" == "$WORK/paper-cnn-mnist" ]] && train paper-cnn "$PAPER_RUN"
  train hybrid "$WORK/hybrid-mnist"
fi

# Classical models are fitted by compare itself, once; later runs of this script reuse them in place.
CMP="$WORK/table1-mnist"
reuse=(--reuse "simple-cnn=$WORK/simple-cnn-mnist" --reuse "paper-cnn=$PAPER_RUN" --reuse "hybrid=$WORK/hybrid-mnist")
for m in svm knn; do
  [[ -f "$CMP/runs/mnist-$m/metrics.json" ]] && reuse+=(--reuse "$m=$CMP/runs/mnist-$m")
done
extra=()
[[ "${ALLOW_UNFINISHED:-0}" == 1 ]] && extra+=(--allow-unfinished)
nice -n 10 digitrec compare --datasets mnist --models svm,knn,simple-cnn,paper-cnn,hybrid --threads "$THREADS" \
  --no-progress --out "$CMP" "${reuse[@]}" "${extra[@]}"

digitrec report "$CMP" --out "$OUT/report.html"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --hide-scrollbars --screenshot="$OUT/report.png" --window-size=1400,3000 \
  "file://$(realpath "$OUT/report.html")" 2>/dev/null
for ext in md csv json; do cp "$CMP/table.$ext" "$OUT/table1-mnist.$ext"; done
cp "$CMP/chart.png" "$OUT/table1-mnist-chart.png"
echo "wrote $OUT/table1-mnist.{md,csv,json}, table1-mnist-chart.png, report.html, report.png"
