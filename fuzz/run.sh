#!/usr/bin/env bash
# Runs the fuzz_ops libFuzzer target for SECONDS seconds:
#   fuzz/run.sh SECONDS [FUZZ_OPS_BINARY] [WORK_DIR]
# The committed seed corpus (fuzz/corpus) is read, never written: new inputs
# go to WORK_DIR/corpus, crashes to WORK_DIR/crashes.  Exits non-zero when
# libFuzzer finds a crash, a leak or a timeout.  Build the binary first with
#   cmake --preset fuzz && cmake --build --preset fuzz
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:?usage: run.sh SECONDS [FUZZ_OPS_BINARY] [WORK_DIR]}"
bin="${2:-$here/../build/fuzz/fuzz/fuzz_ops}"
work="${3:-$here/../build/fuzz/fuzz/work}"
mkdir -p "$work/corpus" "$work/crashes"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# -timeout: one input runs in milliseconds; a hang is a finding.  The
# per-input progress lines are left out; the final statistics and anything
# found are kept (pipefail keeps libFuzzer's exit status).
"$bin" -max_total_time="$seconds" -max_len=512 -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/" \
    "$work/corpus" "$here/corpus" 2>&1 |
    { grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse) ' || true; }
