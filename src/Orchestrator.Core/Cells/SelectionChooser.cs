using System.Globalization;
using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Cells;

/// <summary>One candidate's evidence: the dev losses of its selection cells (n of the expected) with their 95% CI.</summary>
public sealed record SelectionEvidence(IReadOnlyDictionary<string, string> Candidate, int Expected, MetricStatistics DevLoss)
{
    public bool Complete => DevLoss.N == Expected;
}

/// <summary>The choice for one method (and one size with <see cref="SelectionSpec.PerSize"/>), with the evidence and warnings.</summary>
public sealed record SelectionChoice(
    string Method,
    int? Size,
    IReadOnlyDictionary<string, string> Chosen,
    IReadOnlyList<SelectionEvidence> Evidence,
    IReadOnlyList<string> Warnings);

/// <summary>
/// Chooses a method's settings from its selection cells: the candidate with the lowest mean dev loss, only once every
/// candidate has all its cells (an incomplete selection chooses nothing), and with a warning for each numeric setting whose
/// chosen value is the smallest or largest of its candidates (the best may lie beyond the list). Ties go to the candidate
/// listed first. The evaluation split never enters.
/// </summary>
public static class SelectionChooser
{
    /// <param name="method">The method selected for.</param>
    /// <param name="size">The size chosen for (null: all sizes together).</param>
    /// <param name="selection">The method's selection block.</param>
    /// <param name="devLosses">Per candidate combination (in <see cref="SelectionSpec.Combinations"/> order), the dev losses of its finished cells.</param>
    /// <param name="expectedPerCandidate">How many cells each candidate has.</param>
    /// <returns>The choice, or null with the reason when some candidate is incomplete.</returns>
    public static (SelectionChoice? Choice, string? Incomplete) Choose(string method, int? size, SelectionSpec selection,
        IReadOnlyList<(IReadOnlyDictionary<string, string> Candidate, IReadOnlyList<double> DevLosses)> devLosses, int expectedPerCandidate)
    {
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(devLosses);
        var evidence = devLosses.Select(d => new SelectionEvidence(d.Candidate, expectedPerCandidate, MetricStatistics.Of(d.DevLosses.Where(double.IsFinite)))).ToList();
        var missing = evidence.Where(e => !e.Complete).ToList();
        if (missing.Count > 0 || evidence.Count == 0)
        {
            return (null, $"{method}{(size is null ? "" : $" n={size}")}: {missing.Count} of {evidence.Count} candidates lack finished selection cells " +
                $"({string.Join("; ", missing.Select(e => $"{SelectionSpec.Label(e.Candidate)}: {e.DevLoss.N}/{e.Expected}"))})");
        }

        var best = evidence[0];
        foreach (var e in evidence.Skip(1))
        {
            if (e.DevLoss.Mean < best.DevLoss.Mean) best = e;
        }

        var warnings = new List<string>();
        foreach (var (key, values) in selection.Candidates)
        {
            var numbers = values.Select(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x : (double?)null).ToList();
            if (values.Count < 2 || numbers.Any(n => n is null))
            {
                continue;
            }

            double chosen = double.Parse(best.Candidate[key], CultureInfo.InvariantCulture);
            double min = numbers.Min()!.Value, max = numbers.Max()!.Value;
            if (chosen == min || chosen == max)
            {
                warnings.Add($"{method}{(size is null ? "" : $" n={size}")}: the chosen {key} {best.Candidate[key]} is the {(chosen == min ? "smallest" : "largest")} " +
                    $"of its candidates [{string.Join(", ", values)}]; the best may lie beyond: extend the list past it");
            }
        }

        return (new SelectionChoice(method, size, best.Candidate, evidence, warnings), null);
    }
}
