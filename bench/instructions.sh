#!/usr/bin/env bash
# Instructions per request, per scenario, under callgrind: a count that does not depend on
# the machine's load (unlike req/s), so it can be compared across runs on a busy machine.
# The server (release, SQLite) runs under valgrind; each scenario is warmed up, the
# counters zeroed, N keep-alive requests sent one after another, and the total dumped.
#   bench/instructions.sh [BINARY=target/release/tokend] [N=2000] [SCENARIOS=cc,refresh,exchange,sign]
# `sign` needs a binary built with --features bench. KEEP=DIR keeps the callgrind dumps
# (one per scenario, in order) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/tokend}; N=${2:-2000}; SCEN=${3:-cc,refresh,exchange,sign}
PORT=${PORT:-18190}
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$work"/cg.out.* "$KEEP"/ 2>/dev/null; rm -rf "$work"' EXIT
DATABASE_URL=sqlite://$work/t.db TOKEND_KEYS_DIR=$work/keys TOKEND_BIND=127.0.0.1:$PORT \
  TOKEND_ISSUER=http://127.0.0.1:$PORT TOKEND_AUDIENCES=https://api.example.test \
  TOKEND_BOOTSTRAP_PASSWORD=bench-password-123 TOKEND_BENCH_SIGN_ROUTE=true RUST_LOG=warn \
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$BIN" serve > "$work/out" 2>&1 &
PID=$!
for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.2; done
python3 - "$PORT" "$N" "$SCEN" "$PID" "$work" <<'PY'
import base64, glob, http.client, json, subprocess, sys, time
port, n, scen, pid, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
def call(method, path, body=b"", headers={}):
    c.request(method, path, body, headers)
    r = c.getresponse(); data = r.read()
    return r.status, data
def api(method, path, bearer, obj):
    h = {"Content-Type": "application/json"}
    if bearer: h["Authorization"] = "Bearer " + bearer
    s, d = call(method, path, json.dumps(obj).encode(), h)
    assert s < 300, (path, s, d)
    return json.loads(d)
at = api("POST", "/api/v1/login", None, {"email": "admin@localhost", "password": "bench-password-123"})["access_token"]
app = api("POST", "/api/v1/apps", at, {"name": "load", "roles": ["org:member"], "introspect": True})
pat = api("POST", "/api/v1/me/tokens", at, {"name": "load", "ttl_days": 1, "roles": ["org:member"]})
basic = "Basic " + base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
form = {"Content-Type": "application/x-www-form-urlencoded"}
cc = "grant_type=client_credentials&scope=org%3Amember"
reqs = {
    "cc": ("/oauth/token", cc, basic),
    "sign": ("/bench/sign", cc, basic),
    "refresh": ("/oauth/token", f"grant_type=refresh_token&refresh_token={pat['token']}", None),
    "exchange": ("/oauth/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
                 f"&subject_token={pat['token']}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token", None),
    "pat_cc": ("/oauth/token", "grant_type=client_credentials",
               "Basic " + base64.b64encode(f"{pat['id']}:{pat['token']}".encode()).decode()),
}
def totals():
    files = sorted(glob.glob(f"{work}/cg.out.*"), key=lambda f: int(f.rsplit(".", 1)[1]))
    for line in open(files[-1]):
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
print(f"{'scenario':<10}{'requests':>10}{'instructions/request':>22}")
for s in scen:
    path, body, auth = reqs[s]
    h = dict(form)
    if auth: h["Authorization"] = auth
    def send(k):
        for _ in range(k):
            st, d = call("POST", path, body.encode(), h)
            assert st == 200, (s, st, d)
    send(200)
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    send(n)
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    time.sleep(0.5)
    print(f"{s:<10}{n:>10}{totals() / n:>22.0f}", flush=True)
PY
