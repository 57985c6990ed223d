#!/usr/bin/env bash
# Regenerates every table and plot of docs/study.md from the stored results, with the project's own commands only.
#   ORCHESTRATOR_CLUSTER="<connection string of the cluster that ran the study>" docs/study/regenerate.sh
# (or ORCHESTRATOR_ARGS="--data-dir DIR" for an embedded results file). Writes docs/study/*.md and docs/img/study-*.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI_DLL=src/Orchestrator.Cli/bin/Release/net10.0/linux-x64/orchestrator.dll
[ -f "$CLI_DLL" ] || dotnet build -c Release -v quiet -nologo src/Orchestrator.Cli >/dev/null
o() { dotnet "$CLI_DLL" "$@" ${ORCHESTRATOR_ARGS:-}; }
out=docs/study
mkdir -p "$out" docs/img

# E2E low-data: every metric of the E2E suite, paired differences against fine-tuning, the Figure-3-style plots.
for metric in bleu rougeL e2e_bleu nist meteor cider; do
  o results e2e-lowdata --metric "$metric" --format markdown >"$out/e2e-$metric.md"
done
for method in prefix lora adapter; do
  o results e2e-lowdata --metric bleu --compare "$method" finetune --format markdown >"$out/e2e-bleu-$method-vs-finetune.md"
  o results e2e-lowdata --metric rougeL --compare "$method" finetune --format markdown >"$out/e2e-rougeL-$method-vs-finetune.md"
done
o plot e2e-lowdata --metric bleu --x-scale log --out docs/img/study-e2e-bleu.png
o plot e2e-lowdata --metric rougeL --x-scale log --out docs/img/study-e2e-rougeL.png
o results e2e-lowdata --compute --format markdown >"$out/e2e-compute.md"
o export e2e-lowdata --format csv --out "$out/e2e-lowdata-cells.csv"

# WebNLG seen/unseen/all: BLEU, METEOR, TER (and ROUGE-L) per split, the seen - unseen gap, paired differences, plots.
for metric in bleu meteor ter rougeL; do
  o results webnlg-seen-unseen --metric "$metric" --format markdown >"$out/webnlg-$metric.md"
done
for method in prefix lora adapter; do
  o results webnlg-seen-unseen --metric bleu --compare "$method" finetune --format markdown >"$out/webnlg-bleu-$method-vs-finetune.md"
done
o plot webnlg-seen-unseen --metric bleu --x-scale log --out docs/img/study-webnlg-bleu.png
o results webnlg-seen-unseen --compute --format markdown >"$out/webnlg-compute.md"
o export webnlg-seen-unseen --format csv --out "$out/webnlg-seen-unseen-cells.csv"
# The pilot on the base (sweeps/webnlg-base-pilot.yaml): the same cells on a base pretrained for 1,000 steps.
for metric in bleu meteor; do
  o results webnlg-base-pilot --metric "$metric" --format markdown >"$out/pilot-$metric.md"
done
o results webnlg-base-pilot --metric bleu --compare prefix finetune --format markdown >"$out/pilot-bleu-prefix-vs-finetune.md"
o export webnlg-base-pilot --format csv --out "$out/webnlg-base-pilot-cells.csv"
echo "written to $out and docs/img"
