#!/usr/bin/env bash
# Reproduce every figure in docs/performance.md, in one run:
#   1. `jitgate bench` on examples/request.json with each isolation lever,
#   2. the five-way comparison (native, jitgate warm, jitgate fresh, Cedar,
#      regorus) on the file-recovery rule and the composed decision,
#   3. start-up with 50 policy modules, cold and warm,
#   4. HTTP load: wrk against a hyper floor, jitgate (audited) and Cerbos,
#      at -t1 -c32 and again at -t2 -c64,
#   5. revocation lag: 100,000 active grants with 10,000 expiring in one
#      second, and 10,000 expiring over a minute.
#   6. end-to-end revocation lag at real targets (PostgreSQL, slapd,
#      scim2-server): 1,000 provisioned grants ending in the same second.
#   7. cost curves (`jitgate-bench curves`): decision time vs policies
#      loaded, start-up vs modules, store bytes per grant, `audit verify`
#      records/s at 1M records, revocation lag p99 at 10k/100k/1M active
#      grants, memory of `serve` at 100k; draws docs/perf/curves.svg.
#   8. replicas (`jitgate-bench replicas`): audited decisions/s of 3
#      PostgreSQL replicas ÷ 1 at 8 and 32 clients, on the shared cores and
#      with each replica capped to its own CPU quota (cgroups; needs root).
#      Starts the machine's PostgreSQL if it is down, as .ci/run does.
# Installs the wasm32-wasip2 target (via ./dev), wrk (apt) and Cerbos (npm)
# if missing. Everything that runs is built in release by ONE cargo
# invocation of the bench workspace (wasmtime compiled once).
#
#   bench/run.sh [-n SAMPLES]        (default 20000 per row)
#   bench/run.sh --quick [-n SAMPLES] every ratio of docs/performance.md,
#       same release build, less run time: 2,000 samples per row, 3 s wrk
#       runs, `curves --quick`; the revocation figures come from `curves`
#       (grants seeded many to a transaction, 10k and 100k active) instead
#       of `revocation` (grants inserted one fsynced transaction each), and
#       the real-target lags (step 6) and the 1M-grant/1M-record points are
#       skipped. The release build is most of a cold run and is the same in
#       both modes (an opt-level 1 profile was tried: it shifted the ratios
#       and still built for many minutes; docs/performance.md section 13).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$TARGET"
# The bench workspace resolves its own features: its own target folder, so
# its builds and the root's never overwrite each other's binaries.
BENCH_TARGET="$TARGET/bench"
N=20000
QUICK=
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N="$2"; shift 2 ;;
        --quick) QUICK=1; N=2000; shift ;; # a later -n wins
        *) echo "usage: bench/run.sh [--quick] [-n SAMPLES]" >&2; exit 2 ;;
    esac
done
started=$(date +%s)

echo "## Machine"
echo
echo "- $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "- $(uname -sr), $(rustc --version)"
echo "- $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- load before: $(uptime)"
echo "- mode: ${QUICK:+--quick, }$N samples per row"
echo

# Example policies (also installs the wasm target), the start-up template
# module, and every release binary.
./dev policies >/dev/null
JITGATE_BENCH_POLICY_NAME=bench-policy-00 cargo build --quiet --manifest-path bench/Cargo.toml \
    -p bench-policy --target wasm32-wasip2 --profile policy --target-dir "$BENCH_TARGET"
cargo build --quiet --release --manifest-path bench/Cargo.toml --target-dir "$BENCH_TARGET" \
    -p jitgate -p jitgate-bench
BIN="$BENCH_TARGET/release"
built=$(date +%s)
echo "(builds: $((built - started)) s)"
echo

echo "## Levers: \`jitgate bench --request examples/request.json -n $N\` (3 policies)"
echo
for mode in "--no-pool --isolation per-decision" "--isolation per-decision" "--isolation per-worker"; do
    echo "### \`$mode\`"
    echo
    # shellcheck disable=SC2086
    "$BIN/jitgate" --no-cache $mode bench --policies "$TARGET/policies" --request examples/request.json -n "$N"
    echo
done

echo "## Five ways"
"$BIN/jitgate-bench" compare --policies "$TARGET/policies" -n "$N"

echo "## Start-up"
"$BIN/jitgate-bench" startup --module "$BENCH_TARGET/wasm32-wasip2/policy/bench_policy.wasm" --copies 50

echo
echo "## Cost curves"
"$BIN/jitgate-bench" curves --module "$BENCH_TARGET/wasm32-wasip2/policy/bench_policy.wasm" ${QUICK:+--quick}

echo
echo "## HTTP load (wrk; floor, jitgate audited, Cerbos)"
# --quick: 3 s per wrk run instead of 10.
JITGATE_BENCH_BIN="$BIN" bench/http/run.sh "$( [ -n "$QUICK" ] && echo 3 || echo 10 )" 32
echo
JITGATE_BENCH_BIN="$BIN" bench/http/run.sh "$( [ -n "$QUICK" ] && echo 3 || echo 10 )" 64 2

echo
echo "## Replicas: \`jitgate-bench replicas${QUICK:+ --secs 3 --rounds 2}\`"
echo
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start >/dev/null 2>&1 || true
fi
# shellcheck disable=SC2046
"$BIN/jitgate-bench" replicas $( [ -n "$QUICK" ] && echo --secs 3 --rounds 2 )

if [ -n "$QUICK" ]; then
    echo
    echo "(--quick: revocation lag is in the cost curves above; real-target lags skipped)"
    echo
    echo "(whole run: $(( $(date +%s) - started )) s, of which builds $((built - started)) s; load after: $(uptime))"
    exit 0
fi

echo
echo "## Revocation under load"
echo
"$BIN/revocation" 10000 1 90000
"$BIN/revocation" 10000 60
echo
echo "## Revocation lag at the targets: \`provision_lag 1000\`"
echo
./dev ldap-tools >/dev/null
./dev scim-server >/dev/null
"$BIN/provision_lag" 1000

echo
echo "(whole run: $(( $(date +%s) - started )) s, of which builds $((built - started)) s; load after: $(uptime))"
