#!/usr/bin/env bash
# Checks cometail's module layers: every `crate::` path (and every `cometail::` path in the
# binary) must name a module of a strictly lower layer than the file it is in, or the file's
# own module. A path that names an item of the crate root (`crate::escape_for_log`) counts as
# an import of the root, the top layer. Exits 1 and lists the offending lines when any import
# runs sideways or up; an import circle needs one of those, so none means no circle.
#
# Usage: scripts/layers.sh            (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

# Layer of each top-level module, higher imports lower. Same number: siblings, which must not
# import each other. `config` turns the command line into settings for `sources` (below it);
# `sources`, `stream` and `tail` know nothing of `config` or `http`.
declare -A layer=(
  [main]=10 [root]=9 [roles]=9
  [http]=8 [agent]=8
  [config]=7 [hub]=7
  [sources]=6 [cli]=6 [engine]=6 [history]=6
  [stream]=5
  [tail]=4
  [query]=3
  [parse]=2
  [credentials]=1 [tls]=1 [logging]=1 [shutdown]=1
)

module_of() { # src/http/api.rs -> http, src/lib.rs -> root, src/main.rs -> main
  local f=${1#src/}
  case $f in
    lib.rs) echo root ;;
    main.rs) echo main ;;
    */*) echo "${f%%/*}" ;;
    *) echo "${f%.rs}" ;;
  esac
}

bad=0
checked=0
while IFS= read -r file; do
  from=$(module_of "$file")
  [[ -n ${layer[$from]:-} ]] || { echo "$file: module \`$from\` has no layer in scripts/layers.sh"; bad=1; continue; }
  prefix='crate'
  [[ $from == main ]] && prefix='cometail'
  # Every `crate::name` (or `cometail::name`) outside comments, with its line number; `use
  # crate::{a, b}` groups are split into their names.
  while IFS=: read -r line to; do
    checked=$((checked + 1))
    [[ $to == "$from" ]] && continue
    target=$to
    [[ -n ${layer[$to]:-} ]] || target=root
    if ((layer[$target] >= layer[$from])); then
      echo "$file:$line: \`$from\` (layer ${layer[$from]}) imports \`$to\` (layer ${layer[$target]})"
      bad=1
    fi
  done < <(
    sed -e 's://.*$::' "$file" | grep -n "${prefix}::" |
      perl -ne 'my ($n, $t) = /^(\d+):(.*)$/ or next;
        while ($t =~ /\b'"$prefix"'::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)/g) {
          my $m = $1; $m =~ s/[{}]//g;
          for my $p (split /\s*,\s*/, $m) { $p =~ s/::.*//; $p =~ s/^\s+|\s+$//g;
            print "$n:$p\n" if length $p; } }'
  )
done < <(find src -name '*.rs' | sort)

if ((bad)); then
  echo "layers: imports that run sideways or up (see above)"
  exit 1
fi
echo "layers: $checked crate paths checked, none runs sideways or up"
