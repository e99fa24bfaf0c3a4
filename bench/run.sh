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
exec "$VENV/bin/python" bench/harness.py --sluice "$SLUICE_BIN" --sizes "$@" ${BENCH_KINDS:+--kinds $BENCH_KINDS}
