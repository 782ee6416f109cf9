#!/usr/bin/env bash
# Installs frontail (the peer cometail is compared with) into bench/peers/frontail/
# with npm, from the npm registry, and prints the path of its entry script.
# The install dir is gitignored; run this once before `cometail-bench --server frontail`.
#
#   bash bench/peers/frontail.sh            # installs frontail@4.9.2 (override: FRONTAIL_VERSION)
#
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$here/frontail"
version="${FRONTAIL_VERSION:-4.9.2}"
mkdir -p "$dir"
if [ ! -f "$dir/node_modules/frontail/index.js" ] || \
   ! grep -q "\"version\": \"$version\"" "$dir/node_modules/frontail/package.json"; then
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "frontail@$version" >&2)
fi
entry="$dir/node_modules/frontail/index.js"
test -f "$entry"
echo "$entry"
