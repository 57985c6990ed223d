#!/usr/bin/env bash
# Regenerates the README's screenshots of the results page (docs/img/web-sweep.png, web-results.png, web-cell.png,
# web-stages.png): trains two small real sweeps (docs/img/web-demo.yaml, web-staged.yaml) into a throwaway data directory,
# serves them with `orchestrator ui` and photographs the pages in headless Chromium (docs/img/screenshots.cs).
#   docs/img/screenshots.sh [OUT_DIR]      (default docs/img; needs dotnet and Debian's chromium; a few minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath "${1:-$root/docs/img}")
work=$(mktemp -d)
ui=
cleanup() { if [ -n "$ui" ]; then kill "$ui" 2>/dev/null || true; wait "$ui" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

dotnet build "$root/src/Orchestrator.Cli" -c Release -v quiet -nologo
cli=(dotnet "$root/src/Orchestrator.Cli/bin/Release/net10.0/linux-x64/orchestrator.dll")
cd "$work"
"${cli[@]}" run "$root/docs/img/web-demo.yaml" --data-dir "$work/data"
"${cli[@]}" run "$root/docs/img/web-staged.yaml" --data-dir "$work/data"

# The page on a free port (0: the system picks one; `ui` prints its address).
"${cli[@]}" ui --port 0 --data-dir "$work/data" > "$work/ui.log" 2>&1 &
ui=$!
url=
for _ in $(seq 1 240); do
  url=$(sed -n 's|^Results page: \(http://[^;]*\)/;.*|\1|p' "$work/ui.log")
  [ -n "$url" ] && break
  kill -0 "$ui" 2>/dev/null || { cat "$work/ui.log"; exit 1; }
  sleep 0.5
done
[ -n "$url" ] || { echo "orchestrator ui did not start:"; cat "$work/ui.log"; exit 1; }

dotnet run "$root/docs/img/screenshots.cs" -- "$url" web-demo "$out" web-staged
ls -l "$out"/web-*.png
