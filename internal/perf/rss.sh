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
# With RSS_CGROUP_LIMIT (bytes, or with a K/M/G suffix) it then runs them
# a third time in a child memory cgroup of that limit, without GOMEMLIMIT,
# as in a container with a memory limit: scorer then sets its own soft
# limit to 90% of the cgroup's (internal/memlimit), which the run's debug
# log must say, and the same 10% check applies. That needs write access to
# the cgroup file system (root, cgroup v1 or v2 with the memory controller
# delegated); without it the script says so and fails.
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

# A child memory cgroup of the script's own, for RSS_CGROUP_LIMIT: its
# folder in cgdir, its limit file in cglimit.
cgdir=""
cglimit=""
if [[ -n ${RSS_CGROUP_LIMIT:-} ]]; then
  v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
  v2=$(awk -F: '$1 == "0" && $2 == "" {print $3}' /proc/self/cgroup)
  if [[ -n $v1 && -d /sys/fs/cgroup/memory$v1 ]]; then
    cgdir=/sys/fs/cgroup/memory${v1%/}/scorer-rss-$$ cglimit=memory.limit_in_bytes
  elif [[ -n $v2 && -f /sys/fs/cgroup${v2%/}/cgroup.controllers ]]; then
    cgdir=/sys/fs/cgroup${v2%/}/scorer-rss-$$ cglimit=memory.max
  fi
  if [[ -z $cgdir ]] || ! mkdir "$cgdir" 2>/dev/null || ! numfmt --from=iec "${RSS_CGROUP_LIMIT%iB}" >"$cgdir/$cglimit" 2>/dev/null; then
    echo "rss.sh: cannot make a memory cgroup of ${RSS_CGROUP_LIMIT} under /sys/fs/cgroup (needs root and the memory controller)" >&2
    [[ -n $cgdir ]] && rmdir "$cgdir" 2>/dev/null
    exit 2
  fi
  trap 'rmdir "$cgdir" 2>/dev/null' EXIT
fi

# measure LIMIT [cgroup]: RUNS runs of each month with GOMEMLIMIT=LIMIT (""
# for none), in the child cgroup if the second argument is "cgroup"; sets
# med[month] to the median peak RSS in KiB.
declare -A med
measure() {
  if [[ ${2:-} == cgroup ]]; then
    printf '\nin a memory cgroup of %s, GOMEMLIMIT unset\n' "$RSS_CGROUP_LIMIT"
  else
    printf '\nGOMEMLIMIT=%s\n' "${1:-(none)}"
  fi
  printf '%-5s %4s %12s %10s %10s %14s\n' rows run peak_rss_MiB wall_s rows_per_s cpu_s_per_Mrow
  for month in 2020-01 2020-02; do
    rows=$(( ${months[$month]} * 1000000 ))
    peaks=()
    for run in $(seq "$runs"); do
      out=$data/out-$month
      rm -rf "$out"
      log=$data/time-$month.log
      if [[ ${2:-} == cgroup ]]; then
        # The shell joins the cgroup, then becomes time, which runs scorer.
        env -u GOMEMLIMIT sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgdir" \
          /usr/bin/time -v "$bin" backfill --month "$month" --output "$out" "${args[@]}" --log-level debug \
          >"$data/summary-$month.txt" 2>"$log" || { cat "$log" >&2; exit 1; }
        grep -q 'Go memory limit set from the container' "$log" || {
          echo "rss.sh: scorer did not set its memory limit from the cgroup" >&2; exit 1; }
      else
        GOMEMLIMIT=$1 /usr/bin/time -v "$bin" backfill --month "$month" --output "$out" "${args[@]}" >"$data/summary-$month.txt" 2>"$log" || {
          cat "$log" >&2; exit 1; }
      fi
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
if [[ -n $cgdir ]]; then
  measure "" cgroup
  awk -v a="${med[2020-01]}" -v b="${med[2020-02]}" -v l="$RSS_CGROUP_LIMIT" 'BEGIN {
    if (b > 1.10*a) { printf "rss.sh: in a memory cgroup of %s, peak RSS grows with the input (more than 10%%)\n", l > "/dev/stderr"; exit 1 }
  }'
fi
