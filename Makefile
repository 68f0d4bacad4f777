# fvsync: the two commands a new clone needs are `make demo` and `make test`.
CARGO ?= cargo
DEMO_DIR ?= target/demo-mac

.PHONY: all build demo test fmt clippy no-failpoints clean

all: build

build:
	$(CARGO) build --locked

# Builds fvsync, creates a simulated Mac in the seed scenario and runs the main
# job on it: volumes, users, diagnose (out of sync), reconcile, verify (in sync).
demo: build
	DEMO_DIR=$(DEMO_DIR) FVSYNC=target/debug/fvsync sh scripts/demo.sh

# Every test, then clippy and rustfmt, then a check that shipped builds carry
# no failpoints.
test:
	$(CARGO) test --locked --features testing
	$(CARGO) clippy --locked --all-targets --features testing -- -D warnings
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check
	$(MAKE) no-failpoints

no-failpoints:
	$(CARGO) build --locked
	@if grep -q FVSYNC_FAILPOINT target/debug/fvsync; then \
	  echo "error: the default build contains failpoints"; exit 1; \
	else echo "ok: the default build has no failpoints"; fi

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf dist
