#!/usr/bin/env bash
# The one command: builds and runs the whole local system (devidp, upstream,
# demoapi, demohost). Components not built yet in this checkout are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for c in devidp upstream demoapi demohost; do
  if [ -d "$c" ] && ls "$c"/*.go >/dev/null 2>&1; then
    go build -o "bin/$c" "./$c"
    ( "./bin/$c" 2>&1 | sed -u "s/^/[$c] /" ) &
    pids+=($!)
  else
    echo "[run-all] $c: not in this checkout yet, skipped"
  fi
done
[ ${#pids[@]} -gt 0 ] || { echo "[run-all] nothing to run yet"; exit 0; }
wait -n "${pids[@]}"
