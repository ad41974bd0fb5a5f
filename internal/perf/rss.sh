#!/usr/bin/env bash
# Peak memory of the built scorer binary, end to end, on 1M and 10M rows:
# `scorer backfill` of generated Criteo-like CSV dumps with the reference
# ctr-mlp bundle, under /usr/bin/time -v, RUNS times each (default 3),
# first without a memory limit, then with GOMEMLIMIT=$RSS_MEMLIMIT (default
# 300MiB). The 10M-row month is the same two 500k-row files hard-linked ten
# times (10x the rows, the disk of one copy). Prints peak RSS, wall time and
# CPU seconds per million rows of every run, and fails if, with the limit,
# the 10M runs' median peak RSS is more than 10% above the 1M runs'.
#
#   internal/perf/rss.sh            (make rss)
#
# Environment: SCORER_PERF_DATA (default $TMPDIR/scorer-perf, about 500 MB
# of data and output, kept for the next run; make clean-bench-data removes
# it), SCORER_BIN (default: go build ./cmd/scorer into the data folder),
# WORKERS (default 0: one per core), BATCH (default: the config default).
set -euo pipefail
cd "$(dirname "$0")/../.."

data=${SCORER_PERF_DATA:-${TMPDIR:-/tmp}/scorer-perf}
mkdir -p "$data"
bin=${SCORER_BIN:-}
if [[ -z $bin ]]; then
  bin=$data/scorer
  go build -o "$bin" ./cmd/scorer
fi
[[ -x /usr/bin/time ]] || { echo "rss.sh: /usr/bin/time not found (Debian: apt-get install time)" >&2; exit 2; }
go build -o "$data/perfdata" ./internal/perf/perfdata

# month -> copies of the 1M rows
declare -A months=([2020-01]=1 [2020-02]=10)
for month in 2020-01 2020-02; do
  copies=${months[$month]}
  marker=$data/store/dumps/$month/_complete
  if [[ ! -f $marker ]]; then
    "$data/perfdata" -out "$data" -rows 1000000 -files 2 -copies "$copies" -month "$month"
    touch "$marker"
  fi
done

args=(--model "$data/models/ctr-mlp" --input "$data/store" --progress off --log-format text --log-level warn)
[[ -n ${WORKERS:-} ]] && args+=(--workers "$WORKERS")
[[ -n ${BATCH:-} ]] && args+=(--batch-size "$BATCH")

runs=${RUNS:-3}
limit=${RSS_MEMLIMIT:-300MiB}

# measure LIMIT: RUNS runs of each month with GOMEMLIMIT=LIMIT ("" for
# none); sets med[month] to the median peak RSS in KiB.
declare -A med
measure() {
  printf '\nGOMEMLIMIT=%s\n' "${1:-(none)}"
  printf '%-5s %4s %12s %10s %10s %14s\n' rows run peak_rss_MiB wall_s rows_per_s cpu_s_per_Mrow
  for month in 2020-01 2020-02; do
    rows=$(( ${months[$month]} * 1000000 ))
    peaks=()
    for run in $(seq "$runs"); do
      out=$data/out-$month
      rm -rf "$out"
      log=$data/time-$month.log
      GOMEMLIMIT=$1 /usr/bin/time -v "$bin" backfill --month "$month" --output "$out" "${args[@]}" >"$data/summary-$month.txt" 2>"$log" || {
        cat "$log" >&2; exit 1; }
      kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
      wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
      user=$(awk -F': ' '/User time/ {print $2}' "$log")
      sys=$(awk -F': ' '/System time/ {print $2}' "$log")
      peaks+=("$kb")
      awk -v r="$rows" -v n="$run" -v kb="$kb" -v w="$wall" -v u="$user" -v s="$sys" \
        'BEGIN { printf "%-5s %4d %12.0f %10.1f %10.0f %14.2f\n", r/1e6 "M", n, kb/1024, w, r/w, (u+s)/(r/1e6) }'
      rm -rf "$out"
    done
    med[$month]=$(printf '%s\n' "${peaks[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }')
  done
  awk -v a="${med[2020-01]}" -v b="${med[2020-02]}" 'BEGIN {
    printf "median peak RSS: 1M %.0f MiB, 10M %.0f MiB; 10M / 1M = %.3f\n", a/1024, b/1024, b/a }'
}

# Without a memory limit Go's heap goal is twice the live heap (GOGC=100)
# and the runtime keeps freed memory for a while: the peak creeps up over a
# run's first seconds, so a 1M-row run (3 s) can end below the plateau that
# a 10M-row run reaches. Reported, not checked.
measure ""
# With a memory limit (as a deployment sets one) the peak is the limit's
# plateau whatever the input: checked.
measure "$limit"
awk -v a="${med[2020-01]}" -v b="${med[2020-02]}" -v l="$limit" 'BEGIN {
  if (b > 1.10*a) { printf "rss.sh: with GOMEMLIMIT=%s, peak RSS grows with the input (more than 10%%)\n", l > "/dev/stderr"; exit 1 }
}'
