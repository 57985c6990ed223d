#!/usr/bin/env bash
# Regenerates the combined tables of docs/study.md's rerun section (all methods run so far under the paper's conventions) from
# the exported cells committed beside this script, with the project's own commands only (no database, no cluster needed):
#   docs/study/regenerate-rerun-combined.sh
# The selection of the second sweep (rerun-others-selection.txt) needs its database: results e2e-lowdata --selection.
# Inputs: rerun-e2e-cells.csv (finetune and prefix, sweep e2e-lowdata-623d63b247) and rerun-others-cells.csv (ft-top2, adapter,
# prompt, lora, bitfit, sweep e2e-lowdata-095248d80d): same pool, evaluation MRs, subsamples and seeds, so their cells pair
# (results --cells checks each pair's manifest_hash).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI_DLL=src/Orchestrator.Cli/bin/Release/net10.0/linux-x64/orchestrator.dll
[ -f "$CLI_DLL" ] || dotnet build -c Release -v quiet -nologo src/Orchestrator.Cli >/dev/null
o() { dotnet "$CLI_DLL" "$@"; }
out=docs/study
cells=("$out/rerun-e2e-cells.csv" "$out/rerun-others-cells.csv")
for metric in bleu rougeL; do
  o results --cells "${cells[@]}" --metric "$metric" --format markdown >"$out/rerun-all-e2e-$metric.md"
  for method in ft-top2 adapter prefix prompt lora bitfit; do
    o results --cells "${cells[@]}" --metric "$metric" --compare "$method" finetune --format markdown \
      >"$out/rerun-all-e2e-$metric-$method-vs-finetune.md"
  done
done
o results --cells "$out/rerun-others-cells.csv" --compute --format markdown >"$out/rerun-others-compute.md"
o plot --cells "${cells[@]}" --metric bleu --x-scale log --out docs/img/study-rerun-all-e2e-bleu.png
echo "written to $out and docs/img"
