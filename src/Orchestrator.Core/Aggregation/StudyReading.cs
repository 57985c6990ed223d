using System.Globalization;
using System.Text;

namespace Orchestrator.Core.Aggregation;

/// <summary>What a sweep's table cannot say by itself: how many models each point averages, on how many inputs, on what base.</summary>
/// <param name="ModelsPerPoint">Subsamples × seeds of the grid.</param>
/// <param name="EvaluationInputs">Inputs scored per cell (null: the whole evaluation split).</param>
/// <param name="Base">The base in a few words (e.g. "a 2-layer, width-64 GPT-2 shape pretrained on generated text").</param>
/// <param name="SettingsSelected">True when the methods' settings were chosen on dev data by the sweep, false when set by hand.</param>
/// <param name="Closing">A last sentence (where the real comparison is), or null.</param>
public sealed record ReadingContext(int ModelsPerPoint, int? EvaluationInputs, string Base, bool SettingsSelected, string? Closing);

/// <summary>
/// One paragraph that reads a results table for a researcher: at each size which method leads and whether the paired
/// differences to it are established (their 95% CI excludes 0) or not, how each method moves with more data, and what the
/// table does not show. Only numbers from the table and its paired comparisons go in; nothing is claimed without its interval.
/// </summary>
public static class StudyReading
{
    /// <param name="metric">The metric of <paramref name="points"/>.</param>
    /// <param name="points">Points by method and size (one dataset and split, or several: each is read on its own).</param>
    /// <param name="comparisons">Paired comparisons A − B per size; a pair is looked up in either order.</param>
    /// <param name="context">What the table does not show.</param>
    public static string Describe(string metric, IReadOnlyList<PointSummary> points,
        IEnumerable<(string A, string B, IReadOnlyList<PairedSummary> Rows)> comparisons, ReadingContext context)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(comparisons);
        ArgumentNullException.ThrowIfNull(context);
        var paired = comparisons.ToList();
        var text = new StringBuilder();
        var groups = points
            .Where(p => p.Method is not null && p.Size is not null && p.Statistics.N > 0 && double.IsFinite(p.Statistics.Mean))
            .GroupBy(p => (p.Dataset, p.Split))
            .ToList();
        if (groups.Count == 0)
        {
            return $"No {metric} values yet: nothing to read.";
        }

        foreach (var group in groups)
        {
            string where = groups.Count > 1 ? $"On {group.Key.Dataset}/{group.Key.Split}: " : "";
            var bySize = group.GroupBy(p => p.Size!.Value).OrderBy(g => g.Key).ToList();
            foreach (var size in bySize)
            {
                var ranked = size.OrderByDescending(p => p.Statistics.Mean).ThenBy(p => p.Method, StringComparer.Ordinal).ToList();
                var leader = ranked[0];
                text.Append(where).Append(F($"With {size.Key} training examples {leader.Method} leads at {leader.Statistics.Mean:F1} {metric}"));
                if (ranked.Count == 1)
                {
                    text.Append(". ");
                    continue;
                }

                var behind = ranked.Skip(1).Select(p => Behind(leader, p, size.Key, group.Key, paired)).ToList();
                text.Append("; ").Append(Join(behind)).Append(". ");
            }

            if (bySize.Count > 1)
            {
                int first = bySize[0].Key, last = bySize[^1].Key;
                var moves = group.GroupBy(p => p.Method!)
                    .OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => (Method: g.Key, From: g.FirstOrDefault(p => p.Size == first), To: g.FirstOrDefault(p => p.Size == last)))
                    .Where(m => m.From is not null && m.To is not null)
                    .Select(m => F($"{m.Method} {m.To!.Statistics.Mean - m.From!.Statistics.Mean:+0.0;-0.0;0.0}"))
                    .ToList();
                if (moves.Count > 0)
                {
                    text.Append(where).Append(F($"From {first} to {last} examples: ")).Append(Join(moves)).Append(". ");
                }
            }
        }

        text.Append(F($"What the table does not show: each point averages {context.ModelsPerPoint} models"));
        text.Append(context.EvaluationInputs is { } inputs ? F($" scored on {inputs} inputs") : "");
        text.Append(F($", so only differences whose interval excludes 0 are established; the base is {context.Base}, not the paper's GPT-2 medium"));
        text.Append(context.SettingsSelected
            ? ", and each method's settings were chosen on dev data by the sweep."
            : ", and the learning rates were set by hand for this base (not selected on dev data).");
        if (!string.IsNullOrWhiteSpace(context.Closing))
        {
            text.Append(' ').Append(context.Closing.Trim());
        }

        return text.ToString().Trim();
    }

    private static string Behind(PointSummary leader, PointSummary other, int size, (string? Dataset, string? Split) at,
        List<(string A, string B, IReadOnlyList<PairedSummary> Rows)> paired)
    {
        double gap = leader.Statistics.Mean - other.Statistics.Mean;
        var difference = Lookup(leader.Method!, other.Method!, size, at, paired);
        if (difference is null || difference.N < 2 || !double.IsFinite(difference.CiLow))
        {
            return F($"{other.Method} is {gap:F1} lower (no paired interval)");
        }

        string verdict = difference.CiLow > 0 ? "an established gap" : "not distinguishable from it";
        return F($"{other.Method} is {gap:F1} lower (paired 95% CI {difference.CiLow:F1} to {difference.CiHigh:F1} over {difference.N} pairs: {verdict})");
    }

    /// <summary>The paired statistics of A − B at <paramref name="size"/>, from a comparison of A − B or (negated) of B − A.</summary>
    private static MetricStatistics? Lookup(string a, string b, int size, (string? Dataset, string? Split) at,
        List<(string A, string B, IReadOnlyList<PairedSummary> Rows)> paired)
    {
        foreach (var (ca, cb, rows) in paired)
        {
            bool forward = ca == a && cb == b, backward = ca == b && cb == a;
            if (!forward && !backward)
            {
                continue;
            }

            var row = rows.FirstOrDefault(r => r.Size == size && (r.Dataset is null || r.Dataset == at.Dataset) && (r.Split is null || r.Split == at.Split));
            if (row is null)
            {
                continue;
            }

            var d = row.Difference;
            return forward ? d : d with { Mean = -d.Mean, CiLow = -d.CiHigh, CiHigh = -d.CiLow, Min = -d.Max, Max = -d.Min };
        }

        return null;
    }

    private static string Join(IReadOnlyList<string> parts) =>
        parts.Count <= 1 ? string.Concat(parts) : string.Join(", ", parts.Take(parts.Count - 1)) + " and " + parts[^1];

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
