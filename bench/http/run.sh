#!/usr/bin/env bash
# HTTP load on loopback with wrk (installed here if missing), one run, one table:
#   (a) the floor: a minimal hyper server returning a fixed body;
#   (b) jitgate serve, POST /v1/decisions, every decision durably audited
#       (SQLite, synchronous=FULL, group commit) — the file-recovery rule alone,
#       the composed file-recovery decision (baseline + file-recovery + business-hours),
#       and the rule again with isolation = "per-worker" (warm instances);
#       and the rule with the ticket named by id only, its facts read from the
#       ticket registry (issue 12: at most 10 % slower than facts in the body);
#   (c) Cerbos 0.55 (npm @cerbos/cerbos-linux-x64) with the same rule as a Cerbos policy,
#       checked to give the same verdicts as jitgate on 18 requests first.
# Usage: bench/http/run.sh [seconds per run, default 10] [connections, default 32]
#                          [wrk threads, default 1]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DUR="${1:-10}"
CONN="${2:-32}"
THREADS="${3:-1}"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk >/dev/null
fi
CERBOS="$TARGET/cerbos/package/cerbos-linux-x64"
if [ ! -x "$CERBOS" ]; then
    mkdir -p "$TARGET/cerbos"
    (cd "$TARGET/cerbos" && npm pack --silent @cerbos/cerbos-linux-x64@0.55.0 >/dev/null && tar xzf cerbos-cerbos-linux-x64-0.55.0.tgz)
    chmod +x "$CERBOS"
fi
./dev policies >/dev/null
# The same single release build of the bench workspace as bench/run.sh
# (which passes the folder in JITGATE_BENCH_BIN once it has built it).
BIN="${JITGATE_BENCH_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --quiet --release --manifest-path bench/Cargo.toml --target-dir "$TARGET/bench" \
        -p jitgate -p jitgate-bench
    BIN="$TARGET/bench/release"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

TOKEN="bench-token-0123456789"
SHA="$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
mkdir -p "$WORK/rule" "$WORK/composed"
cp "$TARGET/policies/file-recovery.wasm" "$WORK/rule/"
cp "$TARGET/policies/"{baseline,file-recovery,business-hours}.wasm "$WORK/composed/"
config() { # name policies-dir port [isolation]
    cat > "$WORK/$1.toml" <<TOML
listen = "127.0.0.1:$3"
store = "$WORK/$1.db"
policies = "$2"
cache-dir = "$WORK/cache"
isolation = "${4:-per-decision}"
# A pipeline trusted with ticket facts (what every body below but the
# registry one sends).
[[tokens]]
name = "pipeline"
sha256 = "$SHA"
roles = ["pipeline"]
trusted-context = true
TOML
}
config rule "$WORK/rule" 18091
config composed "$WORK/composed" 18092
config warm "$WORK/rule" 18093 per-worker

wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
"$BIN/http_floor" 127.0.0.1:18090 >/dev/null & PIDS+=($!)
"$BIN/jitgate" serve --config "$WORK/rule.toml" >/dev/null 2>&1 & PIDS+=($!)
"$BIN/jitgate" serve --config "$WORK/composed.toml" >/dev/null 2>&1 & PIDS+=($!)
"$BIN/jitgate" serve --config "$WORK/warm.toml" >/dev/null 2>&1 & PIDS+=($!)
(cd bench/http/cerbos && exec "$CERBOS" server --config=config.yaml >/dev/null 2>&1) & PIDS+=($!)
for p in 18090 18091 18092 18093 3592; do wait_port "$p"; done

jit_body() { # role state assignee
    local ticket=""
    if [ "$2" != none ]; then
        ticket=", \"ticket\": {\"id\": \"INC-1\", \"state\": \"$2\", \"priority\": 3, $( [ "$3" = none ] || echo "\"assignee\": \"$3\",") \"opened-at\": 1795597200}"
    fi
    echo "{\"id\": \"load\", \"subject\": {\"id\": \"alice\", \"kind\": \"human\", \"roles\": [\"$1\"]}, \"task\": \"file-recovery\", \"resource\": \"fs-01\", \"entitlement\": \"backup-operator\", \"justification\": \"restore the finance share\", \"requested-ttl\": 1800$ticket}"
}
cerbos_body() { # role state assignee
    local state="$2" assignee="$3"
    [ "$state" = none ] && state=""
    [ "$assignee" = none ] && assignee=""
    echo "{\"requestId\": \"load\", \"principal\": {\"id\": \"alice\", \"roles\": [\"$1\"]}, \"resources\": [{\"actions\": [\"file-recovery\"], \"resource\": {\"kind\": \"access_request\", \"id\": \"r1\", \"attr\": {\"ticket_state\": \"$state\", \"ticket_assignee\": \"$assignee\"}}}]}"
}

# Same verdicts first.
checked=0
for role in helpdesk sre; do
    for state in open in-progress closed none; do
        for assignee in alice bob none; do
            [ "$state" = none ] && [ "$assignee" != none ] && continue
            j="$(curl -s -XPOST localhost:18091/v1/decisions -H "Authorization: Bearer $TOKEN" -d "$(jit_body "$role" "$state" "$assignee")" | grep -o '"outcome":"[a-z-]*"' | head -1 | cut -d'"' -f4)"
            c="$(curl -s -XPOST localhost:3592/api/check/resources -d "$(cerbos_body "$role" "$state" "$assignee")" | grep -o 'EFFECT_[A-Z]*' | head -1)"
            want=deny; [ "$c" = EFFECT_ALLOW ] && want=allow
            if [ "$j" != "$want" ]; then
                echo "verdicts differ for role=$role state=$state assignee=$assignee: jitgate=$j cerbos=$c" >&2
                exit 1
            fi
            checked=$((checked + 1))
        done
    done
done
echo "verdicts agree on $checked requests (jitgate file-recovery rule vs Cerbos)"

lua() { # file body auth
    cat > "$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = [[$2]]
LUA
}
lua "$WORK/jit.lua" "$(jit_body helpdesk open alice)"
# The registry row: INC-1's facts recorded once (a request carrying them is
# an event of the trusted pipeline), then bodies that name the ticket by id.
seed="$(jit_body helpdesk open alice | sed 's/"id": "load"/"id": "seed-inc-1"/')"
curl -s -o /dev/null -w '%{http_code}' -XPOST localhost:18091/v1/requests -H "Authorization: Bearer $TOKEN" -d "$seed" | grep -q 201 \
    || { echo "could not record INC-1 in the ticket registry" >&2; exit 1; }
by_id="$(jit_body helpdesk open alice | sed 's/"ticket": {[^}]*}/"ticket": {"id": "INC-1"}/')"
[ "$(curl -s -XPOST localhost:18091/v1/decisions -H "Authorization: Bearer $TOKEN" -d "$by_id" | grep -o '"outcome":"[a-z-]*"' | head -1 | cut -d'"' -f4)" = allow ] \
    || { echo "a body naming INC-1 by id was not allowed on the registry's facts" >&2; exit 1; }
lua "$WORK/registry.lua" "$by_id"
lua "$WORK/cerbos.lua" "$(cerbos_body helpdesk open alice)"

rows=()
run() { # label url lua
    local out rps p50 p99
    out="$(wrk -t"$THREADS" -c"$CONN" -d"${DUR}s" --latency -s "$3" "$2")"
    rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
    p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
    p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
    errs="$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
    total="$(echo "$out" | awk '/requests in/ {print $1}')"
    # wrk counts a refusal (503 busy: the evaluator's queue is full) as a
    # request served; only answered decisions count toward a ratio.
    ok="$(awk -v r="$rps" -v t="${total:-0}" -v e="${errs:-0}" 'BEGIN { if (t > 0) printf "%d", r * (t - e) / t; else print 0 }')"
    rows+=("| $1 | ${rps%.*} | $ok | $p50 | $p99 | ${errs:-0} |")
    echo "$1: $rps req/s" >&2
}
run "floor: minimal hyper, fixed body" "http://127.0.0.1:18090/" "$WORK/jit.lua"
run "jitgate POST /v1/decisions, file-recovery rule, audited" "http://127.0.0.1:18091/v1/decisions" "$WORK/jit.lua"
run "jitgate POST /v1/decisions, file-recovery rule, audited, ticket from the registry" "http://127.0.0.1:18091/v1/decisions" "$WORK/registry.lua"
run "jitgate POST /v1/decisions, composed (3 policies), audited" "http://127.0.0.1:18092/v1/decisions" "$WORK/jit.lua"
run "jitgate POST /v1/decisions, file-recovery rule, audited, isolation = per-worker" "http://127.0.0.1:18093/v1/decisions" "$WORK/jit.lua"
run "Cerbos 0.55 /api/check/resources, same rule" "http://127.0.0.1:3592/api/check/resources" "$WORK/cerbos.lua"
audited="$("$BIN/jitgate" audit --store "$WORK/rule.db" verify)"

echo
echo "wrk -t$THREADS -c$CONN -d${DUR}s on loopback, $(nproc) cores shared by server and load generator"
echo
echo "| target | requests/s | 2xx/s | p50 | p99 | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "jitgate rule store after the run: $audited"
