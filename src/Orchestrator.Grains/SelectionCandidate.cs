using System.Text.Json.Serialization;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Grains;

/// <summary>
/// One candidate of a selection decision: its values, n of the expected selection cells, the best-step dev loss's mean and
/// 95% CI (null until defined), and whether it was chosen. The evidence stored with a choice (by the CLI or the sweep grain)
/// and the rows of the selection report are these records.
/// </summary>
public sealed record SelectionCandidate(
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("values")] IReadOnlyDictionary<string, string> Values,
    [property: JsonPropertyName("n")] int N,
    [property: JsonPropertyName("expected")] int Expected,
    [property: JsonPropertyName("dev_loss_mean")] double? Mean,
    [property: JsonPropertyName("dev_loss_ci_low")] double? CiLow,
    [property: JsonPropertyName("dev_loss_ci_high")] double? CiHigh,
    [property: JsonPropertyName("chosen")] bool Chosen)
{
    /// <summary>Each candidate of <paramref name="decision"/>, <paramref name="chosen"/> marked (compared whatever the order of its values).</summary>
    public static IReadOnlyList<SelectionCandidate> Of(SelectionDecision decision, IReadOnlyDictionary<string, string>? chosen)
    {
        ArgumentNullException.ThrowIfNull(decision);
        string? chosenKey = chosen is null ? null : Key(chosen);
        return decision.Evidence.Select(e => new SelectionCandidate(SelectionSpec.Label(e.Candidate), e.Candidate, e.DevLoss.N, e.Expected,
            Defined(e.DevLoss.Mean), Defined(e.DevLoss.CiLow), Defined(e.DevLoss.CiHigh), Key(e.Candidate) == chosenKey)).ToList();
    }

    /// <summary>The label of <paramref name="values"/> in key order: the same for the same values however they are ordered.</summary>
    public static string Key(IReadOnlyDictionary<string, string> values) =>
        SelectionSpec.Label(new SortedDictionary<string, string>(values.ToDictionary(), StringComparer.Ordinal));

    private static double? Defined(double x) => double.IsFinite(x) ? x : null;
}
