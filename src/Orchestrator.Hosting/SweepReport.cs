using Orchestrator.Core.Aggregation;
using Orchestrator.Results;

namespace Orchestrator.Hosting;

/// <summary>One row of a sweep's table: a point (split, method, size) with its metric summary over finished cells.</summary>
public sealed record PointRow(string Split, string Method, int Size, int Expected, int Failed, Summary Summary)
{
    public bool Complete => Summary.N == Expected;
}

public static class SweepReport
{
    /// <summary>Groups a sweep's cells by (split, method, size) and summarises <paramref name="metric"/> over successful cells.</summary>
    public static IReadOnlyList<PointRow> Build(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> cells, string metric) =>
        cells
            .GroupBy(c => (c.Cell.Split, c.Cell.Method, c.Cell.Size))
            .OrderBy(g => g.Key.Split, StringComparer.Ordinal).ThenBy(g => g.Key.Method, StringComparer.Ordinal).ThenBy(g => g.Key.Size)
            .Select(g =>
            {
                var values = g
                    .Where(c => c.Result is { Status: "succeeded" } r && r.Metrics.ContainsKey(metric))
                    .Select(c => c.Result!.Metrics[metric])
                    .ToList();
                var failed = g.Count(c => c.Result is { Status: "failed" });
                return new PointRow(g.Key.Split, g.Key.Method, g.Key.Size, g.Count(), failed, Summary.Of(values));
            })
            .ToList();
}
