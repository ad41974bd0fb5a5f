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

echo
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  /^BenchmarkTrainStep\// {
    for (i = 1; i <= NF; i++) if ($(i + 1) == "rows/s") rate = $i
    if ($1 ~ /peer=pytorch/) { split($1, parts, "threads="); torch[parts[2]] = torch[parts[2]] " " rate }
    else { t = ($1 ~ /-[0-9]+$/) ? substr($1, match($1, /-[0-9]+$/) + 1) : 1; scorer[t] = scorer[t] " " rate }
  }
  END {
    printf "%-8s %14s %14s %8s\n", "threads", "scorer rows/s", "torch rows/s", "ratio"
    for (t = 1; t <= 2; t++) if ((t in scorer) && (t in torch)) {
      s = median(scorer[t]); p = median(torch[t])
      printf "%-8d %14.0f %14.0f %7.2fx\n", t, s, p, s / p
    }
  }' "$out"
