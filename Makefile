# scorer: see README.md. Every target runs from a clean checkout with only Go
# and a C compiler (cgo, for DuckDB in tests) installed.

GO            ?= go
BIN           := bin/scorer
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BENCH_COUNT   ?= 5
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test test-short demo demo-gcs demo-bundle testdata bench lint fmt tidy-check clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/scorer

# The test command of the README and of CI.
test:
	$(GO) test -race -count=1 -timeout 15m ./...

test-short:
	$(GO) test -short -count=1 ./...

# Score the embedded demo: a month of ad dumps, then the request queue.
demo: build
	rm -rf out
	./$(BIN) backfill --month 2020-09
	./$(BIN) run --date 2020-09-02
	@echo
	@echo 'Query the tables, e.g. with the duckdb CLI:'
	@echo "  duckdb -c \"SELECT month, count(*), avg(score) FROM read_parquet('out/ad_scores/*/*.parquet', hive_partitioning=true) GROUP BY month\""

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

# Regenerate the demo store (seeded: the same bytes every time).
testdata:
	$(GO) run ./internal/demodata/gendemo -out testdata/store

# The exact command that made the committed demo bundle.
demo-bundle: build
	rm -rf testdata/models/ctr-demo
	./$(BIN) train --month 2020-08 --out testdata/models/ctr-demo --version 2020-08.1

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./scoring/ ./internal/jobs/

lint:
	$(GO) run $(GOLANGCI_LINT) run ./...

fmt:
	$(GO) run $(GOLANGCI_LINT) fmt ./...

tidy-check:
	$(GO) mod tidy -diff

clean:
	rm -rf bin out
