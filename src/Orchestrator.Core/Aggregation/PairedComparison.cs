namespace Orchestrator.Core.Aggregation;

/// <summary>
/// Two cells of a sweep that share everything but the compared attribute: for a method comparison, the same dataset,
/// split, size, subsample and seed (<see cref="Method"/> is method A's); for the generalization gap, the same dataset,
/// method, size, subsample and seed on the <c>seen</c> (A) and <c>unseen</c> (B) splits (<see cref="Split"/> is A's).
/// </summary>
public sealed record PairedObservation(string Dataset, string Split, string Method, int Size, int Subsample, int Seed, double A, double B)
{
    public double Difference => A - B;
}

/// <summary>The paired differences A − B at one point: <see cref="MetricStatistics.N"/> pairs, the mean difference and its 95% CI.</summary>
public sealed record PairedSummary(string? Dataset, string? Split, string? Method, int? Size, MetricStatistics Difference);

/// <summary>Paired comparisons and the generalization gap.</summary>
public static class PairedComparison
{
    /// <summary>The split names of WebNLG-style generalization studies.</summary>
    public const string Seen = "seen";

    public const string Unseen = "unseen";

    /// <summary>
    /// Mean difference A − B with its 95% Student-t interval over the pairs, per group of <paramref name="by"/>
    /// (null keys: not grouped by that attribute). For a method comparison use dataset, split and size; <see cref="PointKeys.None"/>
    /// gives one overall row.
    /// </summary>
    public static IReadOnlyList<PairedSummary> Summarize(IEnumerable<PairedObservation> pairs, PointKeys by)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        return pairs
            .GroupBy(p => (
                Dataset: by.HasFlag(PointKeys.Dataset) ? p.Dataset : null,
                Split: by.HasFlag(PointKeys.Split) ? p.Split : null,
                Method: by.HasFlag(PointKeys.Method) ? p.Method : null,
                Size: by.HasFlag(PointKeys.Size) ? p.Size : (int?)null))
            .Select(g => new PairedSummary(g.Key.Dataset, g.Key.Split, g.Key.Method, g.Key.Size,
                MetricStatistics.Of(g.Select(p => p.Difference).ToList())))
            .OrderBy(s => s.Dataset, StringComparer.Ordinal)
            .ThenBy(s => s.Split, StringComparer.Ordinal)
            .ThenBy(s => s.Method, StringComparer.Ordinal)
            .ThenBy(s => s.Size)
            .ToList();
    }

    /// <summary>Method A − method B per (dataset, split, size) over cells sharing (split, size, subsample, seed).</summary>
    public static IReadOnlyList<PairedSummary> CompareMethods(IEnumerable<PairedObservation> pairs) =>
        Summarize(pairs, PointKeys.Dataset | PointKeys.Split | PointKeys.Size);

    /// <summary>The generalization gap seen − unseen per (dataset, method, size), over cells sharing (method, size, subsample, seed).</summary>
    public static IReadOnlyList<PairedSummary> GeneralizationGap(IEnumerable<PairedObservation> seenUnseenPairs) =>
        Summarize(seenUnseenPairs, PointKeys.Dataset | PointKeys.Method | PointKeys.Size);
}
