#!/usr/bin/env bash
# Side by side on this machine: tokend (release, SQLite, ES256) and panva's oidc-provider
# (bench/peer-oidc), the same load tool and concurrency, then the ratios.
#   bench/compare.sh [SECONDS=10] [CONNECTIONS=64] [POSTGRES_SERVER_URL]
# With a PostgreSQL server URL (e.g. postgres://postgres@127.0.0.1:5432) tokend runs on a fresh
# database made on that server for the run (and dropped after) instead of SQLite.
# PEER=0 skips the peer.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}; CONNS=${2:-64}; PG=${3:-}
PEER_SRC=${PEER_SRC:-bench/peer-oidc}
work=$(mktemp -d)
DB_NAME=tokend_bench_$$
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  [ -n "$PG" ] && psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$PG" ]; then
  psql -q "$PG/postgres" -c "CREATE DATABASE $DB_NAME"
  DB_URL="$PG/$DB_NAME"
else
  DB_URL="sqlite://$work/tokend.db"
fi

# --features bench: the sign-only ceiling route (/bench/sign) is never in a default build.
# The load tool first: building a bench also builds the server binary, with default features.
cargo bench --bench load --no-run --quiet 2>/dev/null || cargo bench --bench load --no-run
cargo build --release --features bench --quiet
LOAD=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)

echo "### $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "### load: $CONNS connections, ${SECS}s per scenario, one load-generator thread; tokend on ${DB_URL%%:*}"

# tokend
PW=bench-password-123
DATABASE_URL=$DB_URL TOKEND_KEYS_DIR=$work/keys TOKEND_BIND=127.0.0.1:18080 \
  TOKEND_ISSUER=http://127.0.0.1:18080 TOKEND_AUDIENCES=https://api.example.test TOKEND_BOOTSTRAP_PASSWORD=$PW TOKEND_BENCH_SIGN_ROUTE=true RUST_LOG=warn \
  target/release/tokend serve > "$work/tokend.out" 2>&1 &
echo $! > "$work/tokend.pid"
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18080/readyz && break; sleep 0.1; done
echo "--- tokend idle RSS: $(ps -o rss= -p "$(cat "$work/tokend.pid")") KiB"
"$LOAD" --url http://127.0.0.1:18080 --password $PW --connections "$CONNS" --seconds "$SECS" --json | tee "$work/tokend.json"
echo "--- tokend RSS after load: $(ps -o rss= -p "$(cat "$work/tokend.pid")") KiB"
kill "$(cat "$work/tokend.pid")"

# peer
if [ "${PEER:-1}" != 0 ] && [ -d "$PEER_SRC" ] && command -v node >/dev/null; then
  cp -r "$PEER_SRC" "$work/peer"; chmod -R u+w "$work/peer"
  ( cd "$work/peer" && npm install --no-audit --no-fund --silent >/dev/null 2>&1 )
  ( cd "$work/peer" && AT_ALG=ES256 PORT=3000 exec node server.mjs > "$work/peer.out" 2>&1 ) &
  echo $! > "$work/peer.pid"
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:3000/jwks && break; sleep 0.2; done
  "$LOAD" --peer --url http://127.0.0.1:3000 --connections "$CONNS" --seconds 3 --json > /dev/null   # JIT warm-up
  "$LOAD" --peer --url http://127.0.0.1:3000 --connections "$CONNS" --seconds "$SECS" --json | tee "$work/peer.json"
  kill "$(cat "$work/peer.pid")"
else
  echo "peer not available (need $PEER_SRC and node)"; : > "$work/peer.json"
fi

python3 - "$work/tokend.json" "$work/peer.json" <<'PY'
import json, sys
t = {r["scenario"]: r for r in map(json.loads, open(sys.argv[1]))}
p = {r["scenario"]: r for r in map(json.loads, filter(str.strip, open(sys.argv[2])))}
sign = t.get("sign", {}).get("rps")
print(f"\n{'scenario':<14}{'tokend req/s':>13}{'p99 ms':>8}{'errors':>7}{'peer req/s':>12}{'peer p99':>9}{'vs peer':>9}{'vs sign':>9}")
for name, r in t.items():
    peer = p.get("cc" if name in ("cc", "refresh", "exchange", "pat_cc") else name)
    ratio = f"{r['rps']/peer['rps']:.1f}x" if peer and peer["rps"] else "-"
    ceil = f"{100*r['rps']/sign:.0f}%" if sign and name != "sign" else "-"
    print(f"{name:<14}{r['rps']:>13.0f}{r['p99_ms']:>8.2f}{r['non2xx']+r['io_errors']:>7}"
          f"{(peer or {}).get('rps', 0):>12.0f}{(peer or {}).get('p99_ms', 0):>9.2f}{ratio:>9}{ceil:>9}")
print("(refresh/exchange/pat_cc are compared with the peer's client_credentials: the peer has no API-token exchange;")
print(" pat_cc is client_credentials with a personal token as the client secret)")
ex = t.get("refresh", {}).get("rps")
if ex:
    for name, target in (("gateway", 1.5), ("gateway-basic", 1.5), ("introspect", 0.5)):
        if name in t:
            print(f"{name} / refresh exchange: {t[name]['rps']/ex:.2f}x (target >= {target}x)")
PY
