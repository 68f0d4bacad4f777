# fvsync: the two commands a new clone needs are `make demo` and `make test`.
CARGO ?= cargo
DEMO_DIR ?= target/demo-mac

.PHONY: all build demo test fmt clippy no-failpoints clean static macos clippy-macos check-release docs install-docs install-man usb bench bench-kdf schemas

all: build

build:
	$(CARGO) build --locked

# Builds fvsync, creates a simulated Mac in the seed scenario and runs the main
# job on it: volumes, users, diagnose (out of sync), reconcile, verify (in sync).
# Built in its own target dir, so the test build in target/debug keeps its
# failpoints (see no-failpoints).
demo:
	CARGO_TARGET_DIR=target/demo $(CARGO) build --locked --bin fvsync
	DEMO_DIR=$(DEMO_DIR) FVSYNC=target/demo/debug/fvsync sh scripts/demo.sh

# Every test, then the scenario, crash-safety and keychain suites a second
# time through the diskutil backend and the emulated diskutil, then clippy and
# rustfmt, then a check that shipped builds carry no failpoints. The fuzz
# targets are compiled too (fuzz-check).
test:
	$(CARGO) test --locked --features testing
	FVSYNC_TEST_BACKEND=diskutil $(CARGO) test --locked --features testing \
	  --test scenarios --test crash --test keychain --test diskutil --test recovery_key \
	  --test receipt --test hostile
	$(MAKE) fuzz-check
	$(CARGO) clippy --locked --all-targets --features testing -- -D warnings
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check
	$(MAKE) no-failpoints

# Its own target dir: building the default features into target/debug would
# replace the test build's binary there (cargo does not copy a fresh binary
# again when the feature set flips back), and later test runs would use it.
no-failpoints:
	CARGO_TARGET_DIR=target/no-failpoints $(CARGO) build --locked --bin fvsync
	@if grep -q FVSYNC_FAILPOINT target/no-failpoints/debug/fvsync; then \
	  echo "error: the default build contains failpoints"; exit 1; \
	else echo "ok: the default build has no failpoints"; fi

fmt:
	$(CARGO) fmt --all

# Benchmarks (speed, not behaviour): a table and bench/results.json; see
# docs/performance.md. Release build of fvsync first; the emulated diskutil
# (its own target dir, testing feature) for the count of diskutil calls.
bench:
	$(CARGO) build --locked --release --bin fvsync
	CARGO_TARGET_DIR=target/bench-emulator $(CARGO) build --locked --features testing \
	  --bin fvsync-diskutil-emulator
	FVSYNC_BENCH_EMULATOR=target/bench-emulator/debug/fvsync-diskutil-emulator \
	  $(CARGO) run --locked --release --example bench -- target/release/fvsync

# Sections 1 and 2 of the benchmark only (the key derivations), in seconds.
bench-kdf:
	$(CARGO) run --locked --release --example bench -- --kdf-only

# The JSON Schemas of the --json documents (docs/schema/), generated from the
# report types; a test fails when the committed ones differ.
schemas:
	FVSYNC_UPDATE_SCHEMAS=1 $(CARGO) test --locked --features testing --test json_schema \
	  schemas_are_generated_from_the_report_types

# Man pages and shell completions, generated from the command-line definition.
# The first run compiles fvsync (minutes): cargo shows its progress, then each
# page is named as it is written.
docs:
	@echo "make docs: building the generator (cargo's progress below), then writing $(DIST)/docs"
	$(CARGO) build --locked --example gen-docs
	$(CARGO) run --locked --quiet --example gen-docs -- $(DIST)/docs

# The man pages where `man fvsync` finds them, and the shell completions:
# make install-docs [PREFIX=/usr/local] [DESTDIR=...] (may need sudo).
# install-man installs what make docs already wrote.
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
install-docs: docs
	$(MAKE) install-man

install-man:
	@test -f $(DIST)/docs/man/fvsync.1 || { echo "error: no $(DIST)/docs/man/fvsync.1: run make docs first"; exit 1; }
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(DIST)/docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 644 $(DIST)/docs/completions/fvsync.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/fvsync
	install -m 644 $(DIST)/docs/completions/_fvsync $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_fvsync
	install -m 644 $(DIST)/docs/completions/fvsync.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/fvsync.fish
	@echo "installed $$(ls $(DIST)/docs/man/*.1 | wc -l | tr -d ' ') man pages in $(DESTDIR)$(MANDIR)/man1: try man fvsync"

# Stages a USB stick for Recovery: binaries in dist/ (or a release build),
# SHA256SUMS, the launcher and the runbook. Usage: make usb DIR=/Volumes/STICK
usb:
	@test -n "$(DIR)" || { echo "usage: make usb DIR=/path/to/stick"; exit 2; }
	sh scripts/stage-usb.sh "$(DIR)"

# ---------------------------------------------------------------------------
# Release binaries (docs/release.md). Tools: rustup targets
# x86_64-unknown-linux-musl, aarch64-apple-darwin, x86_64-apple-darwin, and
# `pip install ziglang cargo-zigbuild` for the macOS link; .ci/run installs them.
# Release builds use their own target dir so they never wait on, or invalidate,
# the debug builds in target/debug.
RELEASE_TARGET_DIR ?= target/release-build
PYTHON ?= python3
DIST ?= dist
LINUX_BIN = $(DIST)/fvsync-linux-x86_64
MACOS_BIN = $(DIST)/fvsync-macos-universal
MACOS_MIN ?= 11.0
# Rust's libc crate asks for libiconv on Apple targets; zig's linker then also
# records libcharset. fvsync uses neither: drop dylibs that no symbol comes from,
# so each slice loads only /usr/lib/libSystem.B.dylib.
MACOS_RUSTFLAGS ?= -C link-arg=-Wl,-dead_strip_dylibs

# Static Linux x86_64: Rust's musl target links its own bundled musl libc
# (self-contained crt objects) through the host cc; every dependency is pure
# Rust, so no zig and no musl-gcc are needed.
static:
	CARGO_TARGET_DIR=$(RELEASE_TARGET_DIR) $(CARGO) build --locked --release \
	  --bin fvsync --target x86_64-unknown-linux-musl
	mkdir -p $(DIST)
	cp -f $(RELEASE_TARGET_DIR)/x86_64-unknown-linux-musl/release/fvsync $(LINUX_BIN)

# Universal macOS (arm64 + x86_64), minimum macOS 11.0, linked by zig on Linux;
# zig's linker ad-hoc signs the arm64 slice.
macos:
	@# cargo-zigbuild's own `cargo metadata` call would silently re-resolve a stale
	@# Cargo.lock; refuse one here instead, like --locked does for cargo build.
	$(CARGO) metadata --locked --format-version 1 > /dev/null
	CARGO_TARGET_DIR=$(RELEASE_TARGET_DIR) MACOSX_DEPLOYMENT_TARGET=$(MACOS_MIN) \
	  CARGO_TARGET_AARCH64_APPLE_DARWIN_RUSTFLAGS="$(MACOS_RUSTFLAGS)" \
	  CARGO_TARGET_X86_64_APPLE_DARWIN_RUSTFLAGS="$(MACOS_RUSTFLAGS)" \
	  $(CARGO) zigbuild --locked --release --bin fvsync --target universal2-apple-darwin
	mkdir -p $(DIST)
	cp -f $(RELEASE_TARGET_DIR)/universal2-apple-darwin/release/fvsync $(MACOS_BIN)

# Type-checks and lints the macOS-only code on Linux (no linker needed).
clippy-macos:
	CARGO_TARGET_DIR=$(RELEASE_TARGET_DIR) $(CARGO) clippy --locked \
	  --target aarch64-apple-darwin --all-targets -- -D warnings
	CARGO_TARGET_DIR=$(RELEASE_TARGET_DIR) $(CARGO) clippy --locked \
	  --target aarch64-apple-darwin --all-targets --features testing -- -D warnings

# Builds both binaries, checks them (scripts/check-release.py parses the ELF and
# Mach-O headers itself), checks that the checker refuses corrupted copies, then
# writes dist/SHA256SUMS.
check-release: static macos clippy-macos
	$(PYTHON) scripts/check-release.py --linux $(LINUX_BIN) --macos $(MACOS_BIN)
	$(PYTHON) scripts/check-release.py --self-test --linux $(LINUX_BIN) --macos $(MACOS_BIN)
	cd $(DIST) && sha256sum fvsync-linux-x86_64 fvsync-macos-universal > SHA256SUMS
	cd $(DIST) && sha256sum --check --strict SHA256SUMS
	@for f in $(LINUX_BIN) $(MACOS_BIN); do \
	  awk -v f="$$f" -v n="$$(stat -c %s "$$f")" \
	    'BEGIN { printf "%s: %d bytes (%.2f MiB)\n", f, n, n / 1048576 }'; \
	done

clean:
	$(CARGO) clean
	rm -rf dist

# ---------------------------------------------------------------------------
# Fuzzing and the dependency audit (docs/security.md). These targets install
# nothing: .ci/run installs the nightly toolchain, cargo-fuzz and cargo-deny.
# fuzz-smoke builds every fuzz target (release, debug assertions on, address
# sanitizer) into fuzz/target, then runs each for FUZZ_SECONDS, one at a time,
# from its committed seeds (fuzz/seeds/<target>, read-only) into its working
# corpus (fuzz/corpus/<target>). A crash stops the run; the input is saved in
# fuzz/artifacts/<target>/.
FUZZ_CARGO ?= cargo +nightly
FUZZ_TARGETS ?= record shadowhash diskutil keybag keychain kerberos
FUZZ_SECONDS ?= 60

.PHONY: fuzz-check fuzz-build fuzz-smoke fuzz-seeds deny

# The fuzz targets compile against today's library (stable toolchain, no
# sanitizer, seconds): part of `make test`, so an API change that breaks a
# target fails there and not only in the nightly fuzz build.
fuzz-check:
	$(CARGO) check --locked --manifest-path fuzz/Cargo.toml --bins

fuzz-build:
	$(FUZZ_CARGO) fuzz build -a

fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_CARGO) fuzz run -a $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 || exit 1; \
	done

# Regenerates fuzz/seeds/ from tests/data/samples/ and fresh simulated Macs.
fuzz-seeds:
	$(CARGO) build --locked --features testing --bins
	sh fuzz/make-seeds.sh target/debug/fvsync target/debug/fvsync-diskutil-emulator

# Licences, banned crates and sources (deny.toml); then known advisories, when
# the RustSec database can be fetched (cargo-deny clones it from GitHub). Where
# it cannot, the advisory check is skipped with a message saying so, never
# silently; when it can, an advisory fails the build.
deny:
	cargo deny check licenses bans sources
	@if GIT_TERMINAL_PROMPT=0 timeout 300 cargo deny fetch db; then \
	  cargo deny --offline check advisories; \
	else \
	  echo "fvsync: SKIPPED: cargo deny check advisories: the RustSec advisory database cannot be fetched from this machine (it is cloned from GitHub)" >&2; \
	fi
