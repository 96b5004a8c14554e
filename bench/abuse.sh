#!/usr/bin/env bash
# The token path under abuse, then an HTTP fuzz of every route (issue #11), against a
# release tokend on SQLite in a temporary directory. Loopback only; bounded in time and count.
#   [MODE=abuse|flood|fuzz|all] [PORT=18081] bench/abuse.sh [SECONDS=10] [CONNECTIONS=64] [FUZZ_REQUESTS=100000]
# flood: a distributed login flood (a new address per request) with the valid-login success
# rate, and the audit rows one member can write a second.
# Exit status 1 when the fuzz fails (a response >= 500 other than 503 + Retry-After from a
# hashing route, a dead server, or RSS growth >= 32 MiB). Abuse targets are printed as met/MISSED.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}; CONNS=${2:-64}; FUZZ=${3:-100000}; PORT=${PORT:-18081}
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --quiet
cargo bench --bench abuse --no-run --quiet 2>/dev/null || cargo bench --bench abuse --no-run
ABUSE=$(ls -t target/release/deps/abuse-* | grep -v '\.d$' | head -1)

echo "### $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg)"

PW=bench-password-123
DATABASE_URL=sqlite://$work/tokend.db TOKEND_KEYS_DIR=$work/keys TOKEND_BIND=127.0.0.1:$PORT \
  TOKEND_ISSUER=http://127.0.0.1:$PORT TOKEND_AUDIENCES=https://api.example.test TOKEND_BOOTSTRAP_PASSWORD=$PW \
  TOKEND_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=warn \
  target/release/tokend serve > "$work/tokend.out" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$PORT/readyz && break; sleep 0.1; done
echo "--- tokend pid $PID, idle RSS $(ps -o rss= -p "$PID") KiB"

status=0
"$ABUSE" --url http://127.0.0.1:$PORT --password $PW --pid "$PID" --seconds "$SECS" --connections "$CONNS" \
  --fuzz-requests "$FUZZ" --mode "${MODE:-all}" || status=$?

kill -0 "$PID" 2>/dev/null && echo "--- server alive at the end, RSS $(ps -o rss= -p "$PID") KiB" || { echo "--- SERVER DIED"; status=1; }
echo "--- server log: $(wc -l < "$work/tokend.out") lines; warnings/errors by kind:"
grep -E 'WARN|ERROR' "$work/tokend.out" | sed -E 's/^\[[^]]*\] *//' | cut -c1-100 | sort | uniq -c | sort -rn | head -10 || true
echo "--- metrics series: $(curl -s http://127.0.0.1:$PORT/metrics | grep -c '^tokend_http_requests_total')"
if command -v sqlite3 >/dev/null; then
  echo "--- audit rows by action (top 8), longest object_id:"
  sqlite3 "$work/tokend.db" "SELECT count(*), action FROM audit_events GROUP BY action ORDER BY 1 DESC LIMIT 8; SELECT 'max object_id chars: ' || max(length(object_id)) FROM audit_events;" || true
fi
kill "$PID"
exit $status
