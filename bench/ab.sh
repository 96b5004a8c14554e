#!/usr/bin/env bash
# Two tokend binaries under the same load, alternately (release, SQLite, fresh each run), so
# that drift of a shared machine hits both alike.
#   bench/ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS=3] [SECONDS=6] [SCENARIOS=cc,refresh]
# e.g. git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
#      bench/ab.sh /tmp/before/target/release/tokend target/release/tokend
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${3:-3}; SECS=${4:-6}; SCEN=${5:-cc,refresh}
cargo bench --bench load --no-run --quiet 2>/dev/null || cargo bench --bench load --no-run
LOAD=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)
echo "### $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); 64 connections, ${SECS}s per scenario"
run() { # binary port
  local w pid
  w=$(mktemp -d)
  DATABASE_URL=sqlite://$w/t.db TOKEND_KEYS_DIR=$w/keys TOKEND_BIND=127.0.0.1:$2 TOKEND_ISSUER=http://127.0.0.1:$2 \
    TOKEND_AUDIENCES=https://api.example.test TOKEND_BOOTSTRAP_PASSWORD=bench-password-123 RUST_LOG=warn \
    "$1" serve > /dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$2/readyz" && break; sleep 0.1; done
  "$LOAD" --url "http://127.0.0.1:$2" --password bench-password-123 --connections 64 --seconds "$SECS" \
    --scenarios "$SCEN" --json | tr '\n' ' '
  echo
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$w"
}
for i in $(seq "$ROUNDS"); do
  echo -n "before $i: "; run "$A" 18101
  echo -n "after  $i: "; run "$B" 18102
done
