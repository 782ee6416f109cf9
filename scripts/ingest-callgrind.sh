#!/usr/bin/env bash
# Instructions per ingested line, a figure the noisy shared machine cannot blur: runs a cometail
# binary under callgrind following a file, zeroes the counters once it answers, appends LINES
# lines of 100 bytes in the benchmark's layout (`plain`, `ts` or `json`, as `cometail-bench
# ingest` writes them) with one `cat`, polls `last=1` every 0.5 s until the last line is
# visible, dumps the counters and prints instructions per line (the ~100 polls are included:
# under 1 %; repeated runs agree within 0.3 %). Build with symbols to see functions:
#   CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     CARGO_TARGET_DIR=target-sym cargo build --release --locked -p cometail
#   callgrind_annotate --inclusive=no OUT   (or the OUT file in kcachegrind)
#
# Usage: scripts/ingest-callgrind.sh BIN FORMAT [OUT] [LINES] [PORT]
set -euo pipefail
bin=$1 format=$2 out=${3:-callgrind.ingest.$2} lines=${4:-200000} port=${5:-18701}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$format" "$lines" > "$dir/lines" <<'PY'
import datetime, sys
fmt, n = sys.argv[1], int(sys.argv[2])
out, base, buf = sys.stdout, 1_796_159_679_123_000_000, []
for seq in range(1, n + 1):
    ts_ns = base + seq * 1_000_000
    ms = ts_ns // 1_000_000
    d = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    stamp = d.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000)
    pre, suf = {'plain': ('', ''), 'ts': (f'{stamp} INFO msg="', '"'),
                'json': (f'{{"ts":"{stamp}","level":"info","msg":"', '"}')}[fmt]
    s = pre + f'cmt {seq} {ts_ns} '
    buf.append(s + 'x' * (100 - len(s) - len(suf) - 1) + suf + '\n')
    if len(buf) >= 10000:
        out.write(''.join(buf)); buf = []
out.write(''.join(buf))
PY
echo "cmt 0 0 warmup" > "$dir/bench.log"
valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" --dump-instr=no \
  --compress-strings=no --compress-pos=no "$bin" --port "$port" "$dir/bench.log" \
  > "$dir/stdout" 2> "$dir/stderr" &
vg=$!
api="http://127.0.0.1:$port/api/streams"
for _ in $(seq 600); do curl -sf "$api" > /dev/null && break; sleep 0.5; done
id=$(curl -s "$api" | python3 -c 'import json, sys; print(json.load(sys.stdin)["streams"][0]["id"])')
sleep 1
callgrind_control -z "$vg" > /dev/null 2>&1
cat "$dir/lines" >> "$dir/bench.log"
for _ in $(seq 3000); do
  sleep 0.5
  curl -s "$api/$id/lines?last=1" | grep -q "cmt $lines " && break
done
callgrind_control -d "$vg" > /dev/null 2>&1
sleep 1
kill -TERM "$vg"
wait "$vg" || true
cp "$dir"/cg.out.1 "$out"
total=$(sed -n 's/^summary: //p' "$out")
echo "$format: $total instructions, $((total / lines)) a line ($out)"
