#!/usr/bin/env bash
# Peak memory and speed of the built scorer binary on months with images:
# `scorer backfill` of 10k, 100k and 1M demo rows, each row showing one of
# 1000 banners (300 x 250 PNG in the input store; internal/perf/imagedata),
# scored by a model with the banner as an image feature and by the same
# model without it (both trained once on testdata/store-images, 2 epochs),
# under /usr/bin/time -v, RUNS times each (default 3), each into a fresh
# output store (the embedding cache starts empty: every banner is decoded
# and embedded once per run). Prints the median peak RSS of both, the
# image model's rows/s and cache hit rate, per month.
#
# A run's memory grows with its rows up to a Parquet row group and a
# record pool (the tabular model's column shows how much); what the images
# add must not grow at all: the script fails if the images' extra peak RSS
# at 1M rows is more than 8 MiB above their extra at 10k rows.
#
#   internal/perf/rss-images.sh            (make rss-images)
#
# Environment: SCORER_PERF_DATA (default $TMPDIR/scorer-perf; the data and
# model go to its images/ folder, about 30 MB, kept for the next run),
# SCORER_BIN (default: go build ./cmd/scorer), RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."

data=${SCORER_PERF_DATA:-${TMPDIR:-/tmp}/scorer-perf}/images
mkdir -p "$data"
bin=${SCORER_BIN:-}
if [[ -z $bin ]]; then
  bin=$data/scorer
  go build -o "$bin" ./cmd/scorer
fi
[[ -x /usr/bin/time ]] || { echo "rss-images.sh: /usr/bin/time not found (Debian: apt-get install time)" >&2; exit 2; }

declare -A rows=([2020-10]=10000 [2020-11]=100000 [2020-12]=1000000)
months=(2020-10 2020-11 2020-12)
for month in "${months[@]}"; do
  if [[ ! -f $data/dumps/$month/_complete ]]; then
    go run ./internal/perf/imagedata -out "$data" -month "$month" -rows "${rows[$month]}"
    touch "$data/dumps/$month/_complete"
  fi
done
model=$data/models/ctr-images tabular=$data/models/ctr-tabular
if [[ ! -f $model/model.yaml ]]; then
  "$bin" train --month 2020-08 --input testdata/store-images --spec testdata/features-images.yaml \
    --epochs 2 --version bench --out "$model" --log-level warn >/dev/null
fi
if [[ ! -f $tabular/model.yaml ]]; then
  "$bin" train --month 2020-08 --input testdata/store-images --epochs 2 --version bench-tabular --out "$tabular" --log-level warn >/dev/null
fi

runs=${RUNS:-3}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) cores), kernel $("$bin" version | sed -n 's/.*kernel \([^)]*\)).*/\1/p')"
printf '%-9s %9s %18s %18s %12s %10s\n' month rows "RSS MiB, images" "RSS MiB, tabular" "rows/s" "hit rate"
declare -A extra
for month in "${months[@]}"; do
  rss=() tab=() rate=() hits=""
  for _ in $(seq "$runs"); do
    for m in "$model" "$tabular"; do
      out=$(mktemp -d "$data/out.XXXX")
      /usr/bin/time -v -o "$out/time" "$bin" backfill --month "$month" --input "$data" --output "$out" --model "$m" \
        --progress off --log-level warn --format json >"$out/summary.json"
      kib=$(awk -F: '/Maximum resident/ {print $2+0}' "$out/time")
      if [[ $m == "$model" ]]; then
        rss+=("$kib")
        rate+=("$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["rows_per_second"]))' "$out/summary.json")")
        hits=$(python3 -c 'import json,sys; print("%.1f%%" % (100*json.load(open(sys.argv[1]))["images"]["hit_rate"]))' "$out/summary.json")
      else
        tab+=("$kib")
      fi
      rm -rf "$out"
    done
  done
  img=$(printf '%s\n' "${rss[@]}" | median) base=$(printf '%s\n' "${tab[@]}" | median)
  extra[$month]=$(( img - base ))
  printf '%-9s %9d %18d %18d %12s %10s\n' "$month" "${rows[$month]}" "$(( img / 1024 ))" "$(( base / 1024 ))" \
    "$(printf '%s\n' "${rate[@]}" | median)" "$hits"
done
echo "the images' extra peak RSS: $(( extra[2020-10] / 1024 )) MiB at 10k rows, $(( extra[2020-12] / 1024 )) MiB at 1M"
if (( extra[2020-12] > extra[2020-10] + 8192 )); then
  echo "rss-images.sh: the images' memory grows with the rows" >&2
  exit 1
fi
