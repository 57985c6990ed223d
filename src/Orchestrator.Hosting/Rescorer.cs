using Orchestrator.Core.Cells;
using Orchestrator.Data;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>What a rescore did.</summary>
/// <param name="Rescored">Cells whose metric rows were rewritten.</param>
/// <param name="Skipped">Cells without a succeeded result (nothing to score), or whose result changed meanwhile.</param>
/// <param name="Problems">One line per cell that could not be rescored (e.g. its outputs do not match its evaluation set).</param>
public sealed record RescoreSummary(int Rescored, int Skipped, IReadOnlyList<string> Problems);

/// <summary>
/// Recomputes metrics from the decoded outputs stored with each result, without retraining: the evaluation references are
/// reloaded from the cell's definition (dataset identity → <see cref="DatasetCatalog.Load"/> → evaluation entries), scored with
/// <see cref="MetricSuite"/>, and upserted with <see cref="IResultStore.UpdateMetricsAsync"/> (attempts and provenance unchanged).
/// </summary>
public static class Rescorer
{
    public static async Task<RescoreSummary> RescoreAsync(IResultStore store, string sweepId, IReadOnlyList<string> metrics,
        IProgress<string>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(metrics);
        var unknown = metrics.Where(m => !MetricSuite.Names.Contains(m)).ToList();
        if (metrics.Count == 0 || unknown.Count > 0)
        {
            throw new ArgumentException(metrics.Count == 0
                ? "no metrics to rescore"
                : $"unknown metric(s) {string.Join(", ", unknown)}{(unknown.Count == 1 ? Core.Specs.Suggestion.DidYouMean(unknown[0], MetricSuite.Names) : "")} " +
                  $"(known: {string.Join(", ", MetricSuite.Names)})");
        }

        var datasets = new Dictionary<string, LoadedDataset>(StringComparer.Ordinal);
        int rescored = 0, skipped = 0;
        var problems = new List<string>();
        foreach (var (cell, result) in await store.GetSweepCellsAsync(sweepId, ct))
        {
            ct.ThrowIfCancellationRequested();
            if (result is not { Status: CellStatus.Succeeded })
            {
                skipped++;
                continue;
            }

            var definition = CellDefinition.FromJson(cell.CellJson);
            if (!datasets.TryGetValue(definition.Dataset.ContentHash, out var data))
            {
                data = DatasetCatalog.Load(definition.Dataset);
                datasets[definition.Dataset.ContentHash] = data;
            }

            var references = data.EvalFor(definition.Split).Select(e => e.References).ToList();
            if (result.Outputs.Count != references.Count)
            {
                problems.Add($"{definition.Label}: {result.Outputs.Count} stored outputs but {references.Count} evaluation inputs");
                continue;
            }

            var scores = new SortedDictionary<string, double>(StringComparer.Ordinal);
            foreach (var metric in metrics)
            {
                foreach (var (name, value) in MetricSuite.Score(metric, result.Outputs, references))
                {
                    scores[name] = value;
                }
            }

            if (await store.UpdateMetricsAsync(cell.CellKey, result.Attempt, scores, ct))
            {
                rescored++;
                progress?.Report($"{definition.Label}: " + string.Join(", ", scores.Select(s => $"{s.Key} {s.Value:F2}")));
            }
            else
            {
                skipped++;
            }
        }

        return new RescoreSummary(rescored, skipped, problems);
    }
}
