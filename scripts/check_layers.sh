#!/usr/bin/env bash
# Checks that every #include "..." in src/ goes to the same layer or a lower one, where the layers
# and their order are the `src/...` rows of the table in docs/ARCHITECTURE.md (bottom first).
# A file belongs to the longest layer folder that holds it; an included path is ranked the same
# way. Prints each violation as file:line and exits 1 if there is any.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
layers=$(grep -oE '^\| `src/[a-z_/]+/`' "$root/docs/ARCHITECTURE.md" | sed -E 's/^\| `src\///; s/\/`$//')
if [[ -z "$layers" ]]; then
  echo "docs/ARCHITECTURE.md: no \`src/...\` rows in the layer table" >&2
  exit 1
fi
cd "$root/src"
grep -rnE '^#include "[^"]+"' --include='*.h' --include='*.cpp' . | sed 's#^\./##' |
  awk -v layers="$layers" '
    BEGIN { n = split(layers, names, "\n"); for (i = 1; i <= n; i++) rank[names[i]] = i }
    # rank of the longest layer folder that is a prefix of path, 0 when none is
    function layer_of(path,   best, len, i) {
      best = 0; len = 0
      for (i = 1; i <= n; i++)
        if (index(path, names[i] "/") == 1 && length(names[i]) > len) { best = i; len = length(names[i]) }
      return best
    }
    {
      split($0, parts, ":"); file = parts[1]; line = parts[2]
      match($0, /#include "[^"]+"/); inc = substr($0, RSTART + 10, RLENGTH - 11)
      from = layer_of(file); to = layer_of(inc)
      if (from == 0) { print file ": in no layer of docs/ARCHITECTURE.md"; bad = 1; next }
      if (to > from) { print file ":" line ": " names[from] " includes " inc " (" names[to] ", a higher layer)"; bad = 1 }
    }
    END { exit bad }'
