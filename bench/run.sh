#!/usr/bin/env bash
# The benchmark: Sluice vs pandas vs Polars on the same generated files, one after another.
#   bench/run.sh              # 100M and 1G, stocks and orders
#   bench/run.sh 10M 100M     # other sizes
# Results: bench/results/latest.{md,json}. Data: bench/data/ (generated once, deterministic; gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

# The same feature set as every other workspace build, so this does not rebuild what they built.
# SLUICE_BIN=path skips the build and measures that binary instead.
if [ -z "${SLUICE_BIN:-}" ]; then
    cargo build --release --workspace
    SLUICE_BIN=target/release/sluice
fi

VENV=.venv/bench
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r bench/requirements.txt

[ $# -gt 0 ] || set -- 100M 1G
"$VENV/bin/python" bench/harness.py --sluice "$SLUICE_BIN" --sizes "$@" ${BENCH_KINDS:+--kinds $BENCH_KINDS}

# AWS mode's row store: rows/s into the emulator's DynamoDB through the row sink, next to the
# emulator's own ceiling (a plain SDK loop writing the same items). BENCH_AWS=0 skips it.
if [ "${BENCH_AWS:-1}" != 0 ]; then
    cargo build --release --workspace --examples
    started_emulator=
    if ! curl -fsS http://127.0.0.1:4566/_ministack/health >/dev/null 2>&1; then
        compose/emulator.sh start
        started_emulator=1
    fi
    line="$(AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
        AWS_SECRET_ACCESS_KEY=test target/release/examples/row_throughput "${BENCH_AWS_ROWS:-20000}")"
    [ -z "$started_emulator" ] || compose/emulator.sh stop
    echo "$line"
    printf '\nAWS mode, DynamoDB on the emulator (ministack, `target/release/examples/row_throughput`): %s\n' \
        "$line" >>bench/results/latest.md
fi
