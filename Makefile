# Thin wrapper: the build is meson's; this only sets it up the same way
# everywhere.  `make run` and `make test` are all a fresh Debian 12 machine needs.
BUILD      ?= build
# -Werror in CI (CI=true), warnings stay warnings on a developer's machine.
WERROR     ?= $(if $(CI),true,false)
MESON_ARGS ?= -Db_ndebug=false -Dwerror=$(WERROR)

.PHONY: all deps setup build test run bench soak fuzz cluster format clean

all: build

deps:
	@./scripts/install-deps.sh

setup: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then meson setup $(BUILD) $(MESON_ARGS); fi

build: setup
	meson compile -C $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

run: build
	./$(BUILD)/daemon/raftd

cluster: build
	@./scripts/cluster.sh $(BUILD)

# The benchmarks' JSON lines go to the terminal and to $(BUILD)/bench/results.jsonl;
# scripts/plot-bench.py draws them (docs/benchmarks.md).  Installs wrk and
# etcd-server first (bench only; gnuplot-nox is a test dependency).
bench: build
	@./scripts/install-deps.sh --bench
	@mkdir -p $(BUILD)/bench
	bash -o pipefail -c '{ ./scripts/bench.sh $(BUILD) && ./scripts/http-bench.sh $(BUILD); } \
	  | tee $(BUILD)/bench/results.jsonl'

# 100,000 simulator seeds across cluster sizes on both cores (docs/simulator.md).
soak: build
	./scripts/sim-soak.sh $(BUILD)

# The libFuzzer targets of tests/fuzz/targets.txt, built with clang in build-fuzz/,
# FUZZ_SECONDS each (`make test` runs them 10 s each).  FUZZ_ARGS=--update-corpus keeps
# what they find in tests/fuzz/corpus/; KEEL_SEED=n picks the seed.
FUZZ_SECONDS ?= 300
fuzz: deps
	./scripts/fuzz.sh --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-fuzz
