#!/usr/bin/env bash
# A/B of the audited HTTP dry run between two commits, in one run: the floor
# (minimal hyper server), jitgate at BASE and jitgate as checked out, each
# serving POST /v1/decisions with the file-recovery rule (and the composed
# three policies), every decision durably audited on SQLite. Rounds
# alternate the servers so that a machine whose speed drifts affects both
# alike; the table gives medians and each one's ratio to the floor of the
# same round.
# Usage: bench/http/ab.sh BASE_REV [seconds, default 10] [threads, default 2]
#                         [connections, default 64] [rounds, default 3]
# AB_BUILD_ONLY=1 builds both and stops; AB_SKIP_BUILD=1 measures what was built.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BASE="${1:?usage: bench/http/ab.sh BASE_REV [seconds] [threads] [connections] [rounds]}"
DUR="${2:-10}"
THREADS="${3:-2}"
CONN="${4:-64}"
ROUNDS="${5:-3}"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk >/dev/null
fi
./dev policies >/dev/null
AB="$TARGET/ab"
mkdir -p "$AB"
# One target folder for both builds: the dependencies are compiled once.
build() { # checkout-dir out-name
    cargo build --quiet --release --manifest-path "$1/bench/Cargo.toml" --target-dir "$TARGET/bench" \
        -p jitgate -p jitgate-bench
    cp "$TARGET/bench/release/jitgate" "$AB/$2"
}
if [ -z "${AB_SKIP_BUILD:-}" ]; then
    SRC="$AB/base-src"
    rm -rf "$SRC"
    git worktree prune
    git worktree add --quiet --detach "$SRC" "$BASE"
    build "$SRC" jitgate-base
    git worktree remove --force "$SRC"
    build "$ROOT" jitgate-new
fi
FLOOR="$TARGET/bench/release/http_floor"
# AB_BUILD_ONLY=1: build now (say, niced beside other work), measure later.
if [ -n "${AB_BUILD_ONLY:-}" ]; then
    echo "built $AB/jitgate-base and $AB/jitgate-new"
    exit 0
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
config() { # name policies-dir port
    cat > "$WORK/$1.toml" <<TOML
listen = "127.0.0.1:$3"
store = "$WORK/$1.db"
policies = "$2"
cache-dir = "$WORK/cache-$1"
[[tokens]]
name = "pipeline"
sha256 = "$SHA"
roles = ["pipeline"]
trusted-context = true
TOML
}
config base-rule "$WORK/rule" 18191
config new-rule "$WORK/rule" 18192
config base-composed "$WORK/composed" 18193
config new-composed "$WORK/composed" 18194
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
"$FLOOR" 127.0.0.1:18190 >/dev/null & PIDS+=($!)
declare -A PID
for v in base new; do
    "$AB/jitgate-$v" serve --config "$WORK/$v-rule.toml" >/dev/null 2>&1 & PIDS+=($!); PID[$v-rule]=$!
    "$AB/jitgate-$v" serve --config "$WORK/$v-composed.toml" >/dev/null 2>&1 & PIDS+=($!); PID[$v-composed]=$!
done
for p in 18190 18191 18192 18193 18194; do wait_port "$p"; done

cat > "$WORK/jit.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = [[{"id": "load", "subject": {"id": "alice", "kind": "human", "roles": ["helpdesk"]}, "task": "file-recovery", "resource": "fs-01", "entitlement": "backup-operator", "justification": "restore the finance share", "requested-ttl": 1800, "ticket": {"id": "INC-1", "state": "open", "priority": 3, "assignee": "alice", "opened-at": 1795597200}}]]
LUA
# Check both answer the same way before measuring.
for port in 18191 18192; do
    out="$(curl -s -XPOST "localhost:$port/v1/decisions" -H "Authorization: Bearer $TOKEN" \
        -d "$(sed -n 's/^wrk.body = \[\[\(.*\)\]\]$/\1/p' "$WORK/jit.lua")")"
    echo "$out" | grep -q '"outcome":"allow"' || { echo "port $port does not allow: $out" >&2; exit 1; }
done

declare -A RPS P99 CPU BAD
# The server's user + system CPU (clock ticks), for CPU per answered
# request: steadier than requests/s when the machine is shared.
ticks() { if [ -n "${PID[$1]:-}" ]; then awk '{print $14 + $15}' "/proc/${PID[$1]}/stat"; else echo 0; fi; }
measure() { # key url
    local out t0 t1 n
    t0="$(ticks "$1")"
    out="$(wrk -t"$THREADS" -c"$CONN" -d"${DUR}s" --latency -s "$WORK/jit.lua" "$2")"
    t1="$(ticks "$1")"
    n="$(echo "$out" | awk '/requests in/ {print $1}')"
    CPU[$1]+="$(awk -v a="$t0" -v b="$t1" -v n="${n:-1}" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%d", (b - a) / hz * 1e6 / n}') "
    BAD[$1]+="$(echo "$out" | awk '/Non-2xx/ {print $NF}' | grep . || echo 0) "
    RPS[$1]+="$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}') "
    P99[$1]+="$(echo "$out" | awk '$1 == "99%" {print $2}') "
    echo "$1: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s" >&2
}
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r" >&2
    measure floor http://127.0.0.1:18190/
    if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
    for v in $order; do
        measure "$v-rule" "http://127.0.0.1:$([ $v = base ] && echo 18191 || echo 18192)/v1/decisions"
        measure "$v-composed" "http://127.0.0.1:$([ $v = base ] && echo 18193 || echo 18194)/v1/decisions"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
floor="$(echo "${RPS[floor]}" | median)"
echo
echo "wrk -t$THREADS -c$CONN -d${DUR}s, $ROUNDS rounds alternating, medians; base = $(git rev-parse --short "$BASE"), new = $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo
echo "| server | requests/s | x floor | µs CPU/request | non-2xx (per round) | p99 (per round) |"
echo "|---|---:|---:|---:|---|---|"
for k in floor base-rule new-rule base-composed new-composed; do
    m="$(echo "${RPS[$k]}" | median)"
    c="$([ "$k" = floor ] && echo - || echo "${CPU[$k]}" | median)"
    echo "| $k | $m | $(awk -v a="$m" -v b="$floor" 'BEGIN {printf "%.3f", a / b}') | $c | ${BAD[$k]:-} | ${P99[$k]}|"
done
for kind in rule composed; do
    b="$(echo "${RPS[base-$kind]}" | median)"
    n="$(echo "${RPS[new-$kind]}" | median)"
    echo "new/base, $kind: $(awk -v a="$n" -v b="$b" 'BEGIN {printf "%.3f", a / b}')"
done
for v in base new; do
    echo "$v rule store after the run: $("$AB/jitgate-new" audit --store "$WORK/$v-rule.db" verify 2>&1 | tail -1)"
done
