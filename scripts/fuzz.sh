#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in fuzz/fuzz_targets/ with cargo-fuzz (libFuzzer), on the
# stable toolchain: cargo-fuzz passes a few -Z flags, which RUSTC_BOOTSTRAP=1 allows on stable; no
# sanitizer by default (FUZZ_SANITIZER=address needs the sanitizer runtime, i.e. nightly).
#
#   scripts/fuzz.sh [SECONDS]          every target for SECONDS each (default 25), as CI does
#   FUZZ_RUNS=10000000 scripts/fuzz.sh every target for that many executions instead (the long run)
#   FUZZ_TARGETS="framing config" ...  only these targets
#
# Each target starts from its seed corpus fuzz/corpus/<target>/ (read only: new inputs go to a temp
# dir, FUZZ_KEEP_CORPUS=1 keeps them in fuzz/corpus-new/<target>/). A crash or a broken invariant
# fails the script loudly and leaves the input in fuzz/artifacts/<target>/; replay it with
# `cargo test --test fuzz_invariants` after adding it to the seed corpus, or
# `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>` in fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "scripts/fuzz.sh: $*" >&2; exit 1; }

SECONDS_EACH=${1:-25}
SANITIZER=${FUZZ_SANITIZER:-none}
CGU=${FUZZ_CODEGEN_UNITS:-1}
CARGO_FUZZ_VERSION=0.13.2
export RUSTC_BOOTSTRAP=1

command -v cargo >/dev/null || die "cargo is missing"
command -v c++ >/dev/null || die "a C++ compiler is needed to build libFuzzer (apt-get install g++)"
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" \
    || die "cargo-fuzz $CARGO_FUZZ_VERSION could not be installed from crates.io"
fi

TARGETS=${FUZZ_TARGETS:-$(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||' | sort)}
echo "== fuzz: building ($(rustc --version), sanitizer $SANITIZER, codegen units $CGU)"
(cd fuzz && cargo fuzz build -s "$SANITIZER" --codegen-units "$CGU") || die "the fuzz targets do not build"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=""
for t in $TARGETS; do
  [ -d "fuzz/corpus/$t" ] || die "no seed corpus fuzz/corpus/$t"
  new="$WORK/corpus-$t"
  if [ "${FUZZ_KEEP_CORPUS:-}" = 1 ]; then new="$PWD/fuzz/corpus-new/$t"; fi
  mkdir -p "$new" "fuzz/artifacts/$t"
  if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS"; else limit="-max_total_time=$SECONDS_EACH"; fi
  log="$WORK/$t.log"
  start=$(date +%s)
  set +e
  (cd fuzz && cargo fuzz run -s "$SANITIZER" --codegen-units "$CGU" "$t" "$new" "corpus/$t" -- \
      "$limit" -max_len=8192 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/") >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ "$rc" -ne 0 ]; then
    echo "== fuzz: $t FAILED (exit $rc) after ${execs:-?} executions; the input is in fuzz/artifacts/$t/:" >&2
    { grep -E -A3 'panicked|ERROR: libFuzzer|deadly signal|==ERROR|SUMMARY' "$log" || tail -20 "$log"; } \
      | cut -c1-300 | head -40 >&2
    ls -t "fuzz/artifacts/$t"/* 2>/dev/null | head -3 >&2 || true
    failed="$failed $t"
  else
    [ -n "$execs" ] || { tail -20 "$log" >&2; die "$t: no execution count in libFuzzer's output"; }
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "== fuzz: $t: $execs executions in ${secs}s, $cov, 0 crashes"
  fi
done
[ -z "$failed" ] || die "fuzz targets failed:$failed"
echo "== fuzz passed"
