# Shell functions the benchmark comparisons share (sourced by
# internal/perf/compare.sh and internal/perf/train/compare.sh).

median() { # stdin: "key value" lines -> "key median", sorted by key
  sort -k1,1 -k2,2g | awk '{ k[NR]=$1; v[NR]=$2 } END {
    i = 1
    while (i <= NR) { j = i; while (j < NR && k[j+1] == k[i]) j++
      n = j - i + 1; m = (n % 2) ? v[i + (n-1)/2] : (v[i + n/2 - 1] + v[i + n/2]) / 2
      print k[i], m; i = j + 1 } }'
}

rows() { # benchmark lines -> "config rows/s", config without the Benchmark prefix and -GOMAXPROCS
  awk '/rows\/s/ { for (i = 1; i <= NF; i++) if ($i == "rows/s") r = $(i-1)
    name = $1; sub(/-[0-9]+$/, "", name); print name, r }'
}
