#!/usr/bin/env bash
# scorer train against PyTorch on the same machine in the same run (make
# bench-train): optimiser steps of the reference ctr-mlp architecture
# (BenchmarkTrainStep/arch=ctr-mlp, scoring/training) and the same model,
# batch and optimiser in PyTorch (train_torch.py, Debian's python3-torch),
# with 1 and 2 threads (scorer: GOMAXPROCS through -cpu; PyTorch:
# torch.set_num_threads). Prints the median rows/s of BENCH_COUNT runs of
# each and scorer's over PyTorch's; above 1x scorer is faster. Absolute
# figures differ between CPUs: only the same-run ratio is a claim.
set -euo pipefail
cd "$(dirname "$0")/../../.."

count=${BENCH_COUNT:-3}
python=${SCORER_TORCH_PYTHON:-/usr/bin/python3}
out=${TMPDIR:-/tmp}/bench-train.txt
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "bench-train: $python cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi

go test ./scoring/training/ -run '^$' -bench 'TrainStep/arch=ctr-mlp$' -benchtime 20x -count "$count" -cpu 1,2 | tee "$out"
for threads in 1 2; do
  "$python" internal/perf/train/train_torch.py --threads "$threads" --count "$count" | tee -a "$out"
done

# shellcheck source=../lib.sh
source internal/perf/lib.sh
med=${out%.txt}.med
# "scorer/threads=N rows/s" (-cpu 1 names no -N) and "pytorch/threads=N rows/s", then medians.
sed -E 's#^BenchmarkTrainStep/arch=ctr-mlp-([0-9]+)[[:space:]]#scorer/threads=\1 #; s#^BenchmarkTrainStep/arch=ctr-mlp[[:space:]]#scorer/threads=1 #; s#^BenchmarkTrainStep/peer=pytorch/#pytorch/#' "$out" |
  rows | median >"$med"
echo
printf '%-8s %14s %14s %8s\n' "threads" "scorer rows/s" "torch rows/s" "ratio"
for t in 1 2; do
  s=$(awk -v k="scorer/threads=$t" '$1 == k { print $2 }' "$med")
  p=$(awk -v k="pytorch/threads=$t" '$1 == k { print $2 }' "$med")
  [[ -z $s || -z $p ]] && continue
  awk -v t="$t" -v s="$s" -v p="$p" 'BEGIN { printf "%-8d %14.0f %14.0f %7.2fx\n", t, s, p, s / p }'
done
