#!/usr/bin/env bash
# Side by side: scorer against the peers of ../shared/peers/ (ONNX Runtime,
# numpy, a pandas pipeline) on the same machine in the same run, printing
# rows/s ratios.            internal/perf/compare.sh   (make bench-compare)
#
# 1. Writes the reference bundles, 1M rows of CSV dumps and the prepared
#    inputs with scorer's scores (.npy) to $SCORER_PERF_DATA (perfdata).
# 2. Runs scorer's Go benchmarks: the models alone (ctr-mlp, ctr-logreg;
#    batch 1024 and 8192; 1 and 2 workers) and end to end (1M rows, CSV to
#    Parquet) -> $data/bench-scorer.txt.
# 3. If ../shared/peers/ (or $SCORER_PEERS) exists and has an executable
#    run.sh, runs it as
#        run.sh DATA_DIR COUNT
#    DATA_DIR holding models/<name>/weights.safetensors (docs/bundle.md),
#    export/{dense,cat,scores-<name>}.npy and store/dumps/2020-01/*.csv.
#    run.sh must first check its scores against export/scores-<name>.npy
#    (within 1e-5) and fail otherwise, then print Go benchmark lines such as
#        BenchmarkPeer/onnxruntime/model=ctr-mlp/batch=1024/workers=1 1 977000 ns/op 1048000 rows/s
#        BenchmarkPeer/pandas/end-to-end/model=ctr-mlp 1 5000000000 ns/op 200000 rows/s
#    COUNT times each -> $data/bench-peers.txt. The ratios are scorer's
#    median rows/s over each peer's for the same model, batch and workers.
# Without peers it says so and stops after step 2 (exit 0).
#
# OPENBLAS_CORETYPE is left as the environment sets it.
set -euo pipefail
cd "$(dirname "$0")/../.."

data=${SCORER_PERF_DATA:-${TMPDIR:-/tmp}/scorer-perf}
peers=${SCORER_PEERS:-../shared/peers}
count=${BENCH_COUNT:-5}
# The profile make build compiles scorer with (Makefile: PGO), so that the
# benchmarks measure the binary it ships; off when not given.
pgo=${SCORER_PGO:-off}
mkdir -p "$data"

if [[ ! -f $data/store/dumps/2020-01/_complete ]]; then
  go run ./internal/perf/perfdata -out "$data" -rows 1000000 -files 2
  touch "$data/store/dumps/2020-01/_complete"
fi
go run ./internal/perf/perfdata -out "$data" -rows 1 -files 1 -month 1999-01 -export "$data/export" >/dev/null
rm -rf "$data/store/dumps/1999-01"

echo "scorer: Go benchmarks, $count runs each (kernel: $(go run ./internal/perf/perfdata -kernel); -pgo=$pgo)"
SCORER_BENCH_DATA=$data go test -pgo="$pgo" -run '^$' -bench 'ReferenceModel' -benchmem -count "$count" ./scoring/ | tee "$data/bench-scorer.txt"
SCORER_BENCH_DATA=$data go test -pgo="$pgo" -run '^$' -bench 'EndToEnd' -benchmem -count "$count" -timeout 60m ./internal/jobs/ | tee -a "$data/bench-scorer.txt"

if [[ ! -d $peers ]]; then
  echo
  echo "compare.sh: $peers not found: the side-by-side comparison with ONNX Runtime, numpy and pandas was NOT run."
  echo "compare.sh: scorer's own figures are in $data/bench-scorer.txt (benchstat-friendly)."
  exit 0
fi
if [[ ! -x $peers/run.sh ]]; then
  echo "compare.sh: $peers exists but has no executable run.sh; see the contract at the top of $0." >&2
  exit 1
fi
"$peers/run.sh" "$data" "$count" | tee "$data/bench-peers.txt"

# Median rows/s per configuration, then scorer / peer.
# shellcheck source=lib.sh
source internal/perf/lib.sh
rows <"$data/bench-scorer.txt" | sed -E 's#^BenchmarkReferenceModel/##; s#^BenchmarkEndToEnd/(model=[^/ ]*)/batch=4096 #end-to-end/\1 #; /^BenchmarkEndToEnd/d' | median >"$data/scorer.med"
rows <"$data/bench-peers.txt" | sed -E 's#^BenchmarkPeer/##' | median >"$data/peers.med"
echo
printf '%-48s %14s %14s %8s\n' "peer / configuration" "peer rows/s" "scorer rows/s" "ratio"
while read -r key r; do
  peer=${key%%/*} cfg=${key#*/}
  s=$(awk -v c="$cfg" '$1 == c { print $2 }' "$data/scorer.med")
  [[ -z $s ]] && continue
  awk -v k="$peer / $cfg" -v p="$r" -v s="$s" 'BEGIN { printf "%-48s %14.0f %14.0f %7.2fx\n", k, p, s, s/p }'
done <"$data/peers.med"
