#!/usr/bin/env bash
# Every GPU measurement in one call of a lent GPU machine (about 10 minutes on an H200), results in $OUT:
#   speed   benchmarks/gpu.py: the speedrun and fast presets eager and with --cuda-graphs (3 seeds), the paper preset
#           (batch 64, 25 epochs) with --cuda-graphs and 2 eager epochs for the ratio; one record naming the card,
#           gpu-<card>-<date>.{json,md}, rewritten after every run.
#   table1  benchmarks/table1.py: Table 1 on MNIST at full size (paper split) with the paper's recipe and
#           --cuda-graphs: the hybrid first (25 epochs), then paper-cnn and simple-cnn, each archived into $OUT the
#           moment it finishes; svm and knn on the machine's CPU; the record, report.html and its screenshot.
#
#   python -m benchmarks.provenance --env             # where the checkout is: prints the exports naming the code
#   export DIGITREC_GIT_COMMIT=... DIGITREC_GIT_DIRTY=0; DIGITREC_DATA=DIR benchmarks/gpu.sh [speed|table1|all]
#   QUICK=1 ...                                       # tiny budgets: checks the script, numbers mean nothing
#
# A copy of the tree sent to a lent machine travels without .git: the DIGITREC_GIT_* variables say which code it is,
# and every record carries them; without them (and without .git) the script refuses to run. It refuses, too, on a
# machine without a CUDA GPU. Either way it exits 2 before writing anything. BUDGET_S (default 570) bounds the call.
set -uo pipefail
PART=${1:-all}
[[ $PART == table1 || $PART == speed || $PART == all ]] || { echo "usage: benchmarks/gpu.sh speed|table1|all" >&2; exit 2; }
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "benchmarks/gpu.sh: no NVIDIA GPU here (nvidia-smi is missing or lists no GPU): run it on a machine with one" >&2
  exit 2
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "from benchmarks.gpu import refusal; import sys; why = refusal(); why and sys.exit('benchmarks/gpu.sh: ' + why)" \
  || exit 2
R=${OUT:-benchmarks/results/gpu-run}
W=${WORK:-/tmp/digitrec-gpu}
BUDGET_S=${BUDGET_S:-570}
mkdir -p "$R" && rm -rf "$W" && mkdir -p "$W"
exec > >(tee -a "$R/gpu.log") 2>&1
stamp() { echo "[$(date -u +%T) +${SECONDS}s] $*"; }
left() { echo $((BUDGET_S - SECONDS)); }

quick=(); table_quick=()
if [[ ${QUICK:-0} == 1 ]]; then
  quick=(--quick); table_quick=(--epochs 1 --limit 1000 --classical-limit 2000)
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
python3 -c "import torch, os; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0), '|', os.cpu_count(), 'CPUs')"

if [[ $PART != table1 ]]; then
  stamp "speed: speedrun/fast presets eager and with CUDA graphs, the paper preset (${quick[*]})"
  timeout "$(( $(left) > 60 ? $(left) - 30 : 30 ))" python3 -m benchmarks.gpu --out "$R" --work "$W/speed" "${quick[@]}" \
    || stamp "speed part ended early (its record holds the runs that finished)"
fi

if [[ $PART != speed ]]; then
  stamp "table 1: the neural models with --cuda-graphs (hybrid first), then svm and knn, the table, the report"
  timeout "$(( $(left) > 30 ? $(left) - 10 : 20 ))" python3 -m benchmarks.table1 --work "$W/table1" --results "$R" \
    --archive "$R" --threads "$(nproc)" --report --train-flag=--cuda-graphs "${table_quick[@]}" \
    || stamp "table 1 ended early (each finished model is archived in $R)"
fi
stamp "done"
