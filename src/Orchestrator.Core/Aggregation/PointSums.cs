namespace Orchestrator.Core.Aggregation;

/// <summary>Which cell attributes a table groups by (the finest point is all four).</summary>
[Flags]
public enum PointKeys
{
    None = 0,
    Dataset = 1,
    Split = 2,
    Method = 4,
    Size = 8,
    All = Dataset | Split | Method | Size,
}

/// <summary>
/// The database's aggregate of one metric at one point (dataset, split, method, size) of a sweep: the cells expected
/// (all of the sweep's cells at the point), those whose result failed, and count, sum, sum of squares, min and max of the
/// metric over the succeeded cells that have a value. Sums merge exactly, so coarser tables are built from these.
/// </summary>
public sealed record PointSums(
    string Dataset,
    string Split,
    string Method,
    int Size,
    string Metric,
    int Expected,
    int Failed,
    int N,
    double Sum,
    double SumOfSquares,
    double Min,
    double Max)
{
    public MetricStatistics Statistics => MetricStatistics.FromSums(N, Sum, SumOfSquares, Min, Max);
}

/// <summary>One row of a results table: a (possibly coarser) point, its cell counts and the metric's statistics.</summary>
/// <param name="Dataset">Null when the table does not group by dataset (likewise for the other keys).</param>
public sealed record PointSummary(
    string? Dataset,
    string? Split,
    string? Method,
    int? Size,
    string Metric,
    int Expected,
    int Failed,
    MetricStatistics Statistics)
{
    /// <summary>Every expected cell has a value; otherwise the point is incomplete and its statistics cover only <c>N</c> cells.</summary>
    public bool Complete => Statistics.N == Expected;
}

/// <summary>Builds result tables from <see cref="PointSums"/>.</summary>
public static class PointAggregation
{
    /// <summary>The order of a results table's finest points: metric, dataset, split, method, size (the database and exported cells alike).</summary>
    public static IReadOnlyList<PointSums> InTableOrder(IEnumerable<PointSums> points) =>
        points.OrderBy(p => p.Metric, StringComparer.Ordinal)
            .ThenBy(p => p.Dataset, StringComparer.Ordinal)
            .ThenBy(p => p.Split, StringComparer.Ordinal)
            .ThenBy(p => p.Method, StringComparer.Ordinal)
            .ThenBy(p => p.Size)
            .ToList();

    /// <summary>
    /// Groups by <paramref name="by"/> (merging the sums of the finer points), for <paramref name="metric"/> (all metrics when
    /// null), ordered by metric, dataset, split, method, size.
    /// </summary>
    public static IReadOnlyList<PointSummary> Summarize(IEnumerable<PointSums> points, PointKeys by = PointKeys.All, string? metric = null)
    {
        ArgumentNullException.ThrowIfNull(points);
        return points
            .Where(p => metric is null || p.Metric == metric)
            .GroupBy(p => (
                p.Metric,
                Dataset: by.HasFlag(PointKeys.Dataset) ? p.Dataset : null,
                Split: by.HasFlag(PointKeys.Split) ? p.Split : null,
                Method: by.HasFlag(PointKeys.Method) ? p.Method : null,
                Size: by.HasFlag(PointKeys.Size) ? p.Size : (int?)null))
            .Select(g =>
            {
                var merged = Merge(g);
                return new PointSummary(g.Key.Dataset, g.Key.Split, g.Key.Method, g.Key.Size, g.Key.Metric,
                    merged.Expected, merged.Failed, merged.Statistics);
            })
            .OrderBy(s => s.Metric, StringComparer.Ordinal)
            .ThenBy(s => s.Dataset, StringComparer.Ordinal)
            .ThenBy(s => s.Split, StringComparer.Ordinal)
            .ThenBy(s => s.Method, StringComparer.Ordinal)
            .ThenBy(s => s.Size)
            .ToList();
    }

    /// <summary>Parses <c>method,size,split</c> (any order; also <c>dataset</c>) into <see cref="PointKeys"/>.</summary>
    public static PointKeys ParseKeys(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var keys = PointKeys.None;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            keys |= part.ToLowerInvariant() switch
            {
                "dataset" => PointKeys.Dataset,
                "split" => PointKeys.Split,
                "method" => PointKeys.Method,
                "size" => PointKeys.Size,
                _ => throw new ArgumentException($"cannot group by '{part}': use dataset, split, method and/or size"),
            };
        }

        return keys;
    }

    private static PointSums Merge(IEnumerable<PointSums> group)
    {
        int expected = 0, failed = 0, n = 0;
        double sum = 0, squares = 0, min = double.NaN, max = double.NaN;
        PointSums? first = null;
        foreach (var p in group)
        {
            first ??= p;
            expected += p.Expected;
            failed += p.Failed;
            if (p.N == 0)
            {
                continue;
            }

            n += p.N;
            sum += p.Sum;
            squares += p.SumOfSquares;
            min = double.IsNaN(min) ? p.Min : Math.Min(min, p.Min);
            max = double.IsNaN(max) ? p.Max : Math.Max(max, p.Max);
        }

        return first! with { Expected = expected, Failed = failed, N = n, Sum = sum, SumOfSquares = squares, Min = min, Max = max };
    }
}
