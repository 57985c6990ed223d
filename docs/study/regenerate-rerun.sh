#!/usr/bin/env bash
# Regenerates the tables and plots of docs/study.md's "Rerun under the paper's conventions" section from the stored results of
# the cluster that ran it, with the project's own commands only:
#   ORCHESTRATOR_CLUSTER_FILE=<that cluster's connection file> docs/study/regenerate-rerun.sh
# Writes docs/study/rerun-*.md, docs/study/rerun-e2e-cells.csv and docs/img/study-rerun-e2e-bleu.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI_DLL=src/Orchestrator.Cli/bin/Release/net10.0/linux-x64/orchestrator.dll
[ -f "$CLI_DLL" ] || dotnet build -c Release -v quiet -nologo src/Orchestrator.Cli >/dev/null
o() { dotnet "$CLI_DLL" "$@" ${ORCHESTRATOR_ARGS:-}; }
out=docs/study
sweep=${RERUN_SWEEP:-e2e-lowdata}
o results "$sweep" --selection >"$out/rerun-selection.txt" 2>&1   # the choices, their evidence and any edge warning
for metric in bleu rougeL e2e_bleu nist meteor cider; do
  o results "$sweep" --metric "$metric" --format markdown >"$out/rerun-e2e-$metric.md"
done
o results "$sweep" --metric bleu --compare prefix finetune --format markdown >"$out/rerun-e2e-bleu-prefix-vs-finetune.md"
o results "$sweep" --metric rougeL --compare prefix finetune --format markdown >"$out/rerun-e2e-rougeL-prefix-vs-finetune.md"
o plot "$sweep" --metric bleu --x-scale log --out docs/img/study-rerun-e2e-bleu.png
o results "$sweep" --compute --format markdown >"$out/rerun-e2e-compute.md"
o export "$sweep" --format csv --out "$out/rerun-e2e-cells.csv"
echo "written to $out and docs/img"
