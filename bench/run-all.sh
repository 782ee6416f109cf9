#!/usr/bin/env bash
# Runs every cometail-bench scenario RUNS times (default 3) against cometail and frontail in
# one process and prints the medians side by side (also written to target/bench-results.json).
#
#   bash bench/run-all.sh                       # full sizes (10 GiB history, 20M-line ingest)
#   RUNS=5 bash bench/run-all.sh --history-gib 1 --ingest-lines 5000000   # extra args pass through
#   COMETAIL_BIN=/path/to/cometail bash bench/run-all.sh                  # measure a given binary
#
# Idle clients need file descriptors on both sides: this raises the soft RLIMIT_NOFILE to the
# hard limit. 100,000 idle clients need a hard limit above ~100,200, which only a privileged
# shell can grant, e.g. `ulimit -Hn 1048576; ulimit -n 1048576` as root with CAP_SYS_RESOURCE
# (or `prlimit --pid $$ --nofile=1048576:1048576`), plus `sysctl -w fs.nr_open=1048576` if
# lower. Without it the idle scenario runs with as many clients as the limit allows and says so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${RUNS:-3}"

hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -gt 1048576 ]; then hard=1048576; fi
ulimit -n "$hard" || true
echo "RLIMIT_NOFILE: soft $(ulimit -n), hard $(ulimit -Hn)" >&2

# COMETAIL_BIN=path measures that binary instead of building target/release/cometail.
cometail_bin="${COMETAIL_BIN:-target/release/cometail}"
if [ -z "${COMETAIL_BIN:-}" ]; then cargo build --release --bin cometail >&2; fi
cargo build --release -p cometail-bench >&2
servers=cometail
if frontail_js="$(bash bench/peers/frontail.sh)"; then
  servers=cometail,frontail
else
  echo "frontail could not be installed: measuring cometail alone" >&2
  frontail_js=bench/peers/frontail/node_modules/frontail/index.js
fi

# cometail's own resource limits (10,000 connections, 5,000 held long polls by default) would
# refuse the idle and 10,000-client runs: raise them for the server the benchmark starts.
export COMETAIL_MAX_CONNECTIONS="${COMETAIL_MAX_CONNECTIONS:-250000}"
export COMETAIL_MAX_LONG_POLLS="${COMETAIL_MAX_LONG_POLLS:-250000}"

echo "machine: $(nproc) cores, $(free -h | awk '/^Mem:/ {print $2}') memory, kernel $(uname -r)" >&2
mkdir -p target
exec target/release/cometail-bench all \
  --servers "$servers" --cometail "$cometail_bin" --frontail "$frontail_js" \
  --repeat "$runs" --json-out target/bench-results.json "$@"
