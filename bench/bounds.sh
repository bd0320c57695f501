#!/usr/bin/env bash
# What the hostile-module bounds (issue 10) cost, and what they save:
#   1. the ordinary path, engine only: `jitgate bench` on examples/request.json
#      (3 policies), BEFORE and AFTER binaries interleaved over ROUNDS rounds;
#   2. the ordinary path over HTTP: POST /v1/decisions (audited, SQLite) with
#      wrk, both servers up at once, runs interleaved;
#   3. the worst amplifier (approval naming 120 groups that all point at one
#      1 MiB latin1 string): wall time and peak RSS of `jitgate eval`, minus
#      the same for a harmless policy.
# Usage: bench/bounds.sh BEFORE_BIN AFTER_BIN [rounds, default 5]
# Both binaries must be release builds. The WAT guests are written by
#   cargo test -p jitgate-tests --test e2e hostile::write_wat_guests_for_the_bench -- --ignored
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BEFORE="$1"
AFTER="$2"
ROUNDS="${3:-5}"
N=20000
WAT="$TARGET/guests-wat"
[ -f "$WAT/amplifier-latin1.wasm" ] || { echo "run the write_wat_guests_for_the_bench test first" >&2; exit 2; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "## 1. Ordinary path, engine: \`jitgate bench -n $N\`, p50 µs per decision (median of $ROUNDS interleaved runs)"
echo
echo "| isolation | before | after | after/before |"
echo "|---|---:|---:|---:|"
for iso in per-decision per-worker; do
    : > "$WORK/b" ; : > "$WORK/a"
    for _ in $(seq "$ROUNDS"); do
        for side in b a; do
            bin="$BEFORE"; [ "$side" = a ] && bin="$AFTER"
            "$bin" --no-cache --isolation "$iso" bench --policies "$TARGET/policies" \
                --request examples/request.json -n "$N" \
                | awk -F'|' 'NR==4 {gsub(/ /,"",$4); print $4}' >> "$WORK/$side"
        done
    done
    b=$(median < "$WORK/b"); a=$(median < "$WORK/a")
    echo "| $iso | $b | $a | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a/b}') |"
done
echo

echo "## 2. Ordinary path, HTTP: POST /v1/decisions, wrk -t1 -c32 -d5s, requests/s (median of $ROUNDS interleaved runs)"
echo
TOKEN="bench-token-0123456789"
SHA="$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
mkdir -p "$WORK/rule"
cp "$TARGET/policies/"{baseline,file-recovery}.wasm "$WORK/rule/"
for side in b a; do
    port=18181; bin="$BEFORE"; [ "$side" = a ] && { port=18182; bin="$AFTER"; }
    cat > "$WORK/$side.toml" <<TOML
listen = "127.0.0.1:$port"
store = "$WORK/$side.db"
policies = "$WORK/rule"
cache-dir = "$WORK/cache-$side"
[[tokens]]
name = "pipeline"
sha256 = "$SHA"
roles = ["pipeline"]
TOML
    "$bin" serve --config "$WORK/$side.toml" >/dev/null 2>&1 & PIDS+=($!)
done
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
wait_port 18181; wait_port 18182
cat > "$WORK/req.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = [[{"id": "load", "subject": {"id": "alice", "kind": "human", "roles": ["helpdesk"]}, "task": "file-recovery", "resource": "fs-01", "entitlement": "backup-operator", "justification": "restore the finance share", "requested-ttl": 1800, "ticket": {"id": "INC-1", "state": "open", "priority": 3, "assignee": "alice", "opened-at": 1795597200}}]]
LUA
: > "$WORK/hb"; : > "$WORK/ha"
for _ in $(seq "$ROUNDS"); do
    wrk -t1 -c32 -d5s -s "$WORK/req.lua" http://127.0.0.1:18181/v1/decisions | awk '/Requests\/sec/ {print $2}' >> "$WORK/hb"
    wrk -t1 -c32 -d5s -s "$WORK/req.lua" http://127.0.0.1:18182/v1/decisions | awk '/Requests\/sec/ {print $2}' >> "$WORK/ha"
done
b=$(median < "$WORK/hb"); a=$(median < "$WORK/ha")
echo "| before | after | after/before |"
echo "|---:|---:|---:|"
echo "| $b | $a | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a/b}') |"
echo

echo "## 3. Worst amplifier: one \`jitgate eval\`, wall s and peak RSS MB (minus a harmless policy's)"
echo
mkdir -p "$WORK/amp" "$WORK/ok"
cp "$WAT/amplifier-latin1.wasm" "$WORK/amp/"
cp "$WAT/allow.wasm" "$WORK/ok/"
sed 's/"task": "file-recovery"/"task": "hostile-amplifier-latin1"/' examples/request.json > "$WORK/amp.json"
sed 's/"task": "file-recovery"/"task": "hostile-allow"/' examples/request.json > "$WORK/ok.json"
measure() { # bin dir request -> "seconds rss_kb"
    /usr/bin/time -f "%e %M" -o "$WORK/t" "$1" --no-cache eval --policies "$2" --request "$3" --json > "$WORK/out.json" 2>/dev/null || true
    cat "$WORK/t"
}
echo "| binary | amplifier wall s | amplifier RSS MB | harmless RSS MB | amplifier − harmless MB | verdict |"
echo "|---|---:|---:|---:|---:|---|"
for side in before after; do
    bin="$BEFORE"; [ "$side" = after ] && bin="$AFTER"
    read -r s kb < <(measure "$bin" "$WORK/amp" "$WORK/amp.json")
    verdict="$(grep -o '"kind": *"[a-z-]*"' "$WORK/out.json" | head -1 | cut -d'"' -f4)"
    detail="$(grep -o '"detail": *"[^"]*"' "$WORK/out.json" | head -1 | cut -d'"' -f4)"
    read -r _ okkb < <(measure "$bin" "$WORK/ok" "$WORK/ok.json")
    echo "| $side | $s | $((kb / 1024)) | $((okkb / 1024)) | $(((kb - okkb) / 1024)) | $verdict: $detail |"
done
