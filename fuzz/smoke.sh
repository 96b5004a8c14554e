#!/usr/bin/env bash
# Fuzz smoke test: every cargo-fuzz target for 8 seconds on its committed seeds
# (fuzz/seeds/TARGET, read-only: new inputs go to a scratch corpus that is deleted).
# Exits non-zero if a target fails to build or finds a crash, panic, leak, timeout or OOM.
# Without a nightly toolchain with cargo-fuzz it skips and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "fuzz smoke: SKIPPED (nightly or cargo-fuzz not installed)"
  exit 0
fi

SECONDS_PER_TARGET=${FUZZ_SMOKE_SECONDS:-8}
targets=$(cargo +nightly fuzz list) || { echo "fuzz smoke: cargo fuzz list failed"; exit 1; }

t=$(date +%s)
echo "== cargo +nightly fuzz build"
if ! nice -n 19 cargo +nightly fuzz build; then
  echo "fuzz smoke: FAILED (build)"
  exit 1
fi
echo "fuzz build took $(( $(date +%s) - t ))s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $targets; do
  echo "== fuzz $target (${SECONDS_PER_TARGET}s)"
  mkdir -p "$scratch/$target"
  # One process, one worker; output stays on this terminal.
  if nice -n 19 cargo +nightly fuzz run "$target" "$scratch/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
      >"$scratch/$target.log" 2>&1; then
    grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$target.log"
  else
    tail -n 60 "$scratch/$target.log"
    echo "fuzz smoke: $target FAILED (the input is under fuzz/artifacts/$target/)"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz smoke: passed ($(echo $targets | wc -w) targets, ${SECONDS_PER_TARGET}s each)"
