# scorer: see README.md. Every target runs from a clean checkout with only Go
# and a C compiler (cgo, for DuckDB in tests) installed.

GO            ?= go
BIN           := bin/scorer
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BENCH_COUNT   ?= 5
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build pgo test test-stress test-short demo demo-images demo-gcs report-demo demo-bundle demo-reference testdata onnx-fixtures onnx-demo proto bench bench-data bench-openblas bench-compare rss rss-images bench-serve bench-train scale clean-bench-data lint fmt tidy-check clean

all: build

# scorer is built with profile-guided optimization (go build -pgo): the
# compiler inlines the hot calls and devirtualizes the hot interface calls
# that this CPU profile of the end-to-end benchmark shows. The benchmarks
# that compare scorer with others (bench, bench-compare) build with it too,
# so that they measure what make build ships. `make pgo` records it again;
# a stale profile only loses some of its effect, and a new one can be worse
# (docs/performance.md, Profile-guided build): compare the two end to end,
# alternating, before committing a new one.
# The tests build without it (a second, profile-guided build of every
# package would lengthen make test by minutes).
PGO := cmd/scorer/scorer.pgo

build:
	$(GO) build -pgo=$(PGO) -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/scorer

pgo: bench-data
	SCORER_BENCH_DATA=$(BENCH_DATA) $(GO) test -run '^$$' -bench '^BenchmarkEndToEnd$$' -benchtime 1x \
	  -cpuprofile $(CURDIR)/$(PGO) -o $(BENCH_DATA)/jobs.test ./internal/jobs/

# The test command of the README and of CI. Failpoints (SIGKILL at named
# points) exist only in builds with -tags failpoints: the crash tests of
# cmd/scorer build their binary so, and the package's own tests run in both.
# The history and sharding simulations (thousands of objects on the GCS
# emulator) run small or not at all under -race, so they run once more without.
# The fuzzers run a count of inputs, not a duration: Go 1.26's fuzzing
# coordinator can fail a duration-limited run with "context deadline
# exceeded" at the end of its time, with no failing input (a race with its
# workers' shutdown, golang/go#75804, fixed in Go 1.27; it failed a CI
# run of FuzzCSVScanner here); a count has no deadline to race.
# 10,000 inputs is 10-20 s each on a 2-core machine.
FUZZ_EXECS ?= 10000x
test:
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -tags failpoints ./internal/failpoint/
	$(GO) test -count=1 -run 'TestHistoryBoundsQueueRunOps|TestShardedBackfillAtScale' ./internal/jobs/
	$(GO) test -run '^$$' -fuzz FuzzRequests -fuzztime $(FUZZ_EXECS) ./internal/serve/
	$(GO) test -run '^$$' -fuzz FuzzCSVScanner -fuzztime $(FUZZ_EXECS) ./readers/

# The suite on a loaded machine: every core kept busy by internal/tools/cpuhog
# (2 spinning goroutines per core, stopping by itself after STRESS_FOR),
# once with the default GOMAXPROCS and once with -cpu 1. Tests must not
# depend on timing; this is how we find out.
STRESS_FOR ?= 60m
test-stress:
	$(GO) build -o bin/cpuhog ./internal/tools/cpuhog
	./bin/cpuhog -for $(STRESS_FOR) & hog=$$!; trap "kill $$hog" EXIT; \
	  $(GO) test -race -count=1 -timeout 30m ./... && \
	  $(GO) test -race -count=1 -tags failpoints ./internal/failpoint/ && \
	  $(GO) test -race -count=1 -timeout 30m -cpu 1 ./... && \
	  $(GO) test -race -count=1 -tags failpoints -cpu 1 ./internal/failpoint/

test-short:
	$(GO) test -short -count=1 ./...

# Score the embedded demo: a month of ad dumps, then the request queue; then
# the feedback loop (docs/evaluation.md): train a challenger (a wide model,
# about a second), score the month again with the shipped model as champion
# and the challenger beside it, evaluate both on the month's labels (per
# device), register both, and let the promotion gate judge the challenger;
# last, import a model trained outside scorer (testdata/onnx, ONNX) and
# score and evaluate it beside the champion.
demo: build
	rm -rf out
	./$(BIN) backfill --month 2020-09
	./$(BIN) run --date 2020-09-02
	@echo
	@echo 'Query the tables, e.g. with the duckdb CLI:'
	@echo "  duckdb -c \"SELECT month, count(*), avg(score) FROM read_parquet('out/ad_scores/*/*.parquet', hive_partitioning=true) GROUP BY month\""
	@echo
	@echo '== champion and challenger =='
	./$(BIN) train --month 2020-08 --arch wide --version 2020-08.wide --out out/models/ctr-demo-wide
	./$(BIN) backfill --month 2020-09 --challenger out/models/ctr-demo-wide
	SCORER_EVALUATE_SEGMENT_COLUMNS=device ./$(BIN) evaluate --month 2020-09 --labels dumps/2020-09
	./$(BIN) models add testdata/models/ctr-demo --registry out/registry
	./$(BIN) models add out/models/ctr-demo-wide --registry out/registry
	./$(BIN) models promote ctr-demo 2020-08.1 --registry out/registry --reason "the shipped demo model"
	./$(BIN) models promote ctr-demo 2020-08.wide --registry out/registry --reason "try the challenger"; \
	  code=$$?; test $$code -eq 6 && echo "promotion refused (exit code 6): the challenger evaluates worse than the champion"
	./$(BIN) models list --registry out/registry
	@echo
	@echo '== a model trained elsewhere (ONNX), as a challenger =='
	./$(BIN) import onnx testdata/onnx/ctr-pytorch.onnx --spec testdata/onnx/features.yaml --stats testdata/onnx/stats.yaml --out out/models/ctr-onnx --data testdata/store/dumps/2020-08
	./$(BIN) backfill --month 2020-09 --challenger out/models/ctr-onnx
	./$(BIN) evaluate --month 2020-09 --labels dumps/2020-09
	@echo
	@$(MAKE) --no-print-directory demo-images

# The demo with images (docs/images.md): the same kind of dumps with a
# banner per ad (testdata/store-images), whose look moves the click rate.
# A model with the banner as an image feature and one without are trained
# on August and compared on September, a month neither saw (a third of its
# banners new): the evaluation shows the AUC gain from the images.
IMAGES_OUT := out/images
demo-images: build
	@echo '== images: a model that sees the banners vs one that does not =='
	rm -rf $(IMAGES_OUT)
	./$(BIN) train --month 2020-08 --input testdata/store-images --spec testdata/features-images.yaml --version 2020-08.images --out $(IMAGES_OUT)/models/ctr-images
	./$(BIN) train --month 2020-08 --input testdata/store-images --version 2020-08.tabular --out $(IMAGES_OUT)/models/ctr-tabular
	./$(BIN) backfill --month 2020-09 --input testdata/store-images --output $(IMAGES_OUT) --model $(IMAGES_OUT)/models/ctr-images --challenger $(IMAGES_OUT)/models/ctr-tabular
	./$(BIN) evaluate --month 2020-09 --input testdata/store-images --output $(IMAGES_OUT) --labels dumps/2020-09

# The same demo against a local GCS emulator (fake-gcs-server, in memory):
# the stores are gs:// URIs, nothing else changes.
GCS_EMULATOR := 127.0.0.1:4443
GS_ARGS      := --input gs://ads --model gs://models/ctr-demo --output gs://analytics/scorer
demo-gcs: build
	$(GO) build -o bin/fakegcs ./internal/tools/fakegcs
	./bin/fakegcs -addr $(GCS_EMULATOR) -bucket ads=testdata/store -bucket models=testdata/models -bucket analytics & \
	  pid=$$!; trap "kill $$pid" EXIT; sleep 1; \
	  STORAGE_EMULATOR_HOST=$(GCS_EMULATOR) ./$(BIN) backfill --month 2020-09 $(GS_ARGS) && \
	  STORAGE_EMULATOR_HOST=$(GCS_EMULATOR) ./$(BIN) run --date 2020-09-02 $(GS_ARGS)

# The run report of the demo month (docs/monitoring.md), scored and
# evaluated afresh in out/, and its screenshot in docs/img/report.png taken
# by headless chromium (apt-get install chromium).
REPORT_WINDOW ?= 1280,1800
report-demo: build
	rm -rf out
	./$(BIN) backfill --month 2020-08
	./$(BIN) backfill --month 2020-09
	./$(BIN) evaluate --month 2020-09 --labels dumps/2020-09
	./$(BIN) report --month 2020-09
	mkdir -p docs/img
	chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --log-level=3 \
	  --window-size=$(REPORT_WINDOW) --user-data-dir=$$(mktemp -d) \
	  --screenshot=$(CURDIR)/docs/img/report.png file://$(CURDIR)/out/reports/ad_scores/month=2020-09.html
	@echo 'report: out/reports/ad_scores/month=2020-09.html, screenshot: docs/img/report.png'

# Regenerate the demo store (seeded: the same bytes every time).
testdata:
	$(GO) run ./internal/demodata/gendemo -out testdata/store -images-out testdata/store-images

# Regenerate the ONNX parity fixtures of scoring/onnx/testdata: small models
# as torch.onnx.export and tf2onnx write them, and ONNX Runtime's outputs on
# their inputs (internal/tools/onnxfixtures/README.md). Unlike the other
# targets it needs the peers' Python onnx and onnxruntime-node
# (../shared/peers/install.sh, run if they are missing). Seeded: the same
# bytes every time.
onnx-fixtures:
	internal/tools/onnxfixtures/run.sh scoring/onnx/testdata

# Regenerate the README's imported ONNX demo model (testdata/onnx): trained
# in numpy on the demo store's 2020-08 and written as torch.onnx.export
# writes it, with its statistics and ONNX Runtime's scores of 2020-09
# (internal/tools/onnxfixtures/README.md). Needs the same peers as
# onnx-fixtures; apart from it because it depends on the demo store (rerun
# it after make testdata) and the docs quote its AUCs. Seeded: the same
# bytes every time.
onnx-demo:
	internal/tools/onnxfixtures/run.sh --demo testdata/onnx

# Regenerate the ONNX protobuf code (scoring/onnx/internal/onnxpb) from its
# onnx.proto3: protoc from Debian's protobuf-compiler, protoc-gen-go at the
# version of google.golang.org/protobuf in go.mod. The generated file is
# committed; nothing else needs protoc.
proto:
	command -v protoc >/dev/null || apt-get install -y protobuf-compiler
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$$($(GO) list -m -f '{{.Version}}' google.golang.org/protobuf)
	cd scoring/onnx/internal/onnxpb && PATH=$(CURDIR)/bin:$$PATH $(GO) generate .

# The command that made the committed demo bundle (with the training of its
# day: 8 epochs, last epoch kept; its model.yaml says so). Rerun with today's
# defaults (early stopping, time-ordered split) it makes a different bundle.
demo-bundle: build
	rm -rf testdata/models/ctr-demo
	./$(BIN) train --month 2020-08 --out testdata/models/ctr-demo --version 2020-08.1

# The reference rows and the training profile of the committed demo bundle
# (its reference.json, the skew guard, docs/bundle.md; its profile.json, the
# drift reference, docs/monitoring.md), computed from the bundle as it is and its
# training month, without retraining it (demo-bundle would change its
# weights). Rerun after a deliberate change of the feature code or kernels
# that moves them, and say why in the commit.
demo-reference:
	rm -f testdata/models/ctr-demo/reference.json testdata/models/ctr-demo/profile.json
	$(GO) run ./internal/tools/reference -model testdata/models/ctr-demo -data testdata/store/dumps/2020-08
	rm -rf testdata/models/ctr-demo/.tmp

# Performance (docs/performance.md). Generated data (reference bundles, 1M
# and 10M rows of Criteo-like CSV) lives in BENCH_DATA, outside the
# repository; clean-bench-data removes it.
BENCH_DATA    ?= $(or $(TMPDIR),/tmp)/scorer-perf
BENCH_MONTH   := $(BENCH_DATA)/store/dumps/2020-01/_complete

# Go benchmarks, BENCH_COUNT runs each (benchstat-friendly; output also in
# $(BENCH_DATA)/bench.txt): the reference models alone (rows/s; batch 1024
# and 8192; 1 and 2 workers), the kernels, the decoders, end to end (1M CSV
# rows -> Parquet; rows/s and CPU-s per million rows) and the demo.
bench: bench-data
	SCORER_BENCH_DATA=$(BENCH_DATA) $(GO) test -pgo=$(CURDIR)/$(PGO) -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m \
	  ./scoring/... ./readers/ ./readers/images/ ./features/ ./writers/ ./internal/jobs/ | tee $(BENCH_DATA)/bench.txt

bench-data: $(BENCH_MONTH)
$(BENCH_MONTH):
	$(GO) run ./internal/perf/perfdata -out $(BENCH_DATA) -rows 1000000 -files 2
	touch $@

# The model benchmarks with OpenBLAS instead of the Go assembly kernel
# (needs cgo and libopenblas-dev; OPENBLAS_CORETYPE is left as it is).
bench-openblas:
	$(GO) test -tags openblas -run '^$$' -bench 'ReferenceModel|PackedLinear' -benchmem -count $(BENCH_COUNT) ./scoring/...

# scorer and the peers of ../shared/peers (ONNX Runtime, numpy, pandas)
# side by side, with ratios; without peers, scorer's side only.
bench-compare:
	SCORER_PERF_DATA=$(BENCH_DATA) BENCH_COUNT=$(BENCH_COUNT) SCORER_PGO=$(CURDIR)/$(PGO) internal/perf/compare.sh

# Peak RSS of bin/scorer end to end on 1M and 10M rows (fails above +10%).
# Peak RSS on 1M and 10M rows (docs/performance.md); RSS_CGROUP_LIMIT=350MiB
# also runs them in a memory cgroup of that size (root), GOMEMLIMIT unset.
rss: build
	SCORER_PERF_DATA=$(BENCH_DATA) SCORER_BIN=$(BIN) internal/perf/rss.sh

# scorer serve under load on loopback (docs/serve.md): calls/s, requests/s
# and p50/p99 latency of /v1/requests and /v1/predict, 8 and 64 clients.
bench-serve:
	$(GO) run ./internal/perf/loadgen -duration 10s -clients 8 -items 10
	$(GO) run ./internal/perf/loadgen -duration 10s -clients 64 -items 10

# scorer train against PyTorch on the same machine in the same run
# (docs/performance.md): optimiser steps of the ctr-mlp architecture, 1 and
# 2 threads. Needs Debian's python3-torch.
bench-train:
	internal/perf/train/compare.sh

# Peak RSS and rows/s of backfills with images (docs/images.md): 10k, 100k
# and 1M demo rows with 1000 banners, a model with and without the banner.
rss-images: build
	SCORER_PERF_DATA=$(BENCH_DATA) SCORER_BIN=$(BIN) internal/perf/rss-images.sh

# Scale simulations (docs/scale.md): sharded backfills of 2,000 to 10,000
# tiny files in 1, 64 and 256 shards on the in-process GCS emulator, and one
# queue run after 200 to 10,000 earlier runs; prints the CPU, the command
# and tables of store operations and times. About 3 minutes on 2 cores.
scale:
	$(GO) run ./internal/perf/scale

clean-bench-data:
	rm -rf $(BENCH_DATA) $(or $(TMPDIR),/tmp)/scorer-bench-data-*

lint:
	$(GO) run $(GOLANGCI_LINT) run ./...
	$(GO) run $(GOLANGCI_LINT) run --build-tags failpoints ./internal/failpoint/

fmt:
	$(GO) run $(GOLANGCI_LINT) fmt ./...

tidy-check:
	$(GO) mod tidy -diff

clean:
	rm -rf bin out
