#!/usr/bin/env bash
# Reproduce every figure in docs/performance.md:
#   1. `jitgate bench` on examples/request.json with each isolation lever,
#   2. the five-way comparison (native, jitgate warm, jitgate fresh, Cedar,
#      regorus) on the file-recovery rule and the composed decision,
#   3. start-up with 50 policy modules, cold and warm.
# Installs nothing but the wasm32-wasip2 target (via ./dev). Builds in release.
#
#   bench/run.sh [-n SAMPLES]        (default 20000 per row)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$TARGET"
N=20000
if [ "${1:-}" = "-n" ]; then N="$2"; fi

echo "## Machine"
echo
echo "- $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "- $(uname -sr), $(rustc --version)"
echo "- $(date -u +%Y-%m-%dT%H:%MZ)"
echo

# Example policies (also installs the wasm target) and the 50 start-up
# modules: bench-policy built once per name, which `env!` bakes in.
./dev policies >/dev/null
MODS="$TARGET/bench-policies"
rm -rf "$MODS" && mkdir -p "$MODS"
for i in $(seq -w 1 50); do
    JITGATE_BENCH_POLICY_NAME="bench-policy-$i" cargo build --quiet --manifest-path bench/Cargo.toml \
        -p bench-policy --target wasm32-wasip2 --profile policy
    cp "$TARGET/wasm32-wasip2/policy/bench_policy.wasm" "$MODS/bench-policy-$i.wasm"
done

cargo build --quiet --release -p jitgate
cargo build --quiet --release --manifest-path bench/Cargo.toml -p jitgate-bench
JITGATE="$TARGET/release/jitgate"
BENCH="$TARGET/release/jitgate-bench"

echo "## Levers: \`jitgate bench --request examples/request.json -n $N\` (3 policies)"
echo
for mode in "--no-pool --isolation per-decision" "--isolation per-decision" "--isolation per-worker"; do
    echo "### \`$mode\`"
    echo
    # shellcheck disable=SC2086
    "$JITGATE" --no-cache $mode bench --policies "$TARGET/policies" --request examples/request.json -n "$N"
    echo
done

echo "## Five ways"
"$BENCH" compare --policies "$TARGET/policies" -n "$N"

echo "## Start-up"
"$BENCH" startup --modules "$MODS"

echo
echo "## HTTP load (wrk; floor, jitgate audited, Cerbos)"
bench/http/run.sh 10 32

echo
echo "## Revocation under load"
cargo bench --quiet -p jitgate-tests --bench revocation -- 10000 1 90000
cargo bench --quiet -p jitgate-tests --bench revocation -- 10000 60
