# NebulaStore — thin front end over CMake/ctest (the real build is CMakeLists.txt).
#
#   make run         install packages, build Release, start `nebula server`
#   make test        install packages, format check, build Release and
#                    ASan+UBSan, run every ctest test in both
#   make bench       run every benchmark against its reference (bench/)
#   make soak        long randomized runs (ctest label `soak`)
#   make crash-test  long crash/kill cycles (ctest label `crash`, more cycles)
#   make test-tsan   ThreadSanitizer build, unit tests (threaded modules)
#   make format      rewrite sources with clang-format

SHELL   := /bin/bash
JOBS    ?= $(shell nproc)
RELEASE := build/release
SAN     := build/asan
TSAN    := build/tsan
ARGS    ?=
SOURCES  = $(shell git ls-files -co --exclude-standard -- 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 2>/dev/null)

.PHONY: all deps build build-san run test test-release test-san test-tsan bench soak crash-test \
        format format-check clean

all: build

deps:
	@scripts/deps.sh test

build:
	@scripts/deps.sh build
	@cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(RELEASE) -j$(JOBS)

build-san:
	@cmake -S . -B $(SAN) -DCMAKE_BUILD_TYPE=Debug -DNB_ASAN=ON -DNB_UBSAN=ON >/dev/null
	@cmake --build $(SAN) -j$(JOBS)

run: build
	$(RELEASE)/src/cli/nebula server $(ARGS)

# Both configurations must pass; the sanitizer run goes last, so the last
# line printed is its ctest summary.
test: deps format-check build build-san test-release test-san

test-release:
	cd $(RELEASE) && ctest --output-on-failure --timeout 600 -j$(JOBS) -LE soak

test-san:
	cd $(SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure --timeout 900 -j$(JOBS) -LE soak

# Not part of `make test` (time): run it when touching threaded code.
test-tsan: deps
	@cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=Debug -DNB_TSAN=ON >/dev/null
	@cmake --build $(TSAN) -j$(JOBS)
	cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	    ctest --output-on-failure --timeout 900 -j$(JOBS) -L unit

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@scripts/bench.sh

soak: deps build
	cd $(RELEASE) && NB_SOAK=1 ctest --output-on-failure -L soak

crash-test: deps build
	cd $(RELEASE) && NB_CRASH_CYCLES=$${NB_CRASH_CYCLES:-1000} ctest --output-on-failure -L crash

format:
	@clang-format -i $(SOURCES)

format-check:
	@scripts/deps.sh test
	@clang-format --dry-run --Werror $(SOURCES) || \
	    { echo "format-check: run 'make format' and commit the result" >&2; exit 1; }

clean:
	rm -rf build
