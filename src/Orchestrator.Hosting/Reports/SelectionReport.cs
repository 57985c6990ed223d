using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Hosting;

/// <summary>
/// A sweep's hyper-parameter selection for <c>results --selection</c>, <c>status</c> and the results page: per method (per size
/// with <c>per_size</c>), each candidate's best-step dev loss (mean and 95% CI over its finished selection cells, n of the
/// expected), which was chosen, and the warnings (a choice at the edge of its candidates).
/// </summary>
public sealed record SelectionReport(
    [property: JsonPropertyName("sweep_id")] string SweepId,
    [property: JsonPropertyName("by")] string By,
    [property: JsonPropertyName("scopes")] IReadOnlyList<SelectionReport.Scope> Scopes)
{
    public const string Chosen = "chosen";
    public const string Awaiting = "awaiting selection";
    public const string Blocked = "blocked";

    /// <summary>One method (and size): its state (<see cref="Chosen"/>, <see cref="Awaiting"/> or <see cref="Blocked"/> by a failed selection cell).</summary>
    public sealed record Scope(
        [property: JsonPropertyName("method")] string Method,
        [property: JsonPropertyName("size")] int? Size,
        [property: JsonPropertyName("state")] string State,
        [property: JsonPropertyName("chosen")] IReadOnlyDictionary<string, string>? ChosenValues,
        [property: JsonPropertyName("finished")] int Finished,
        [property: JsonPropertyName("expected")] int Expected,
        [property: JsonPropertyName("candidates")] IReadOnlyList<Candidate> Candidates,
        [property: JsonPropertyName("warnings")] IReadOnlyList<string> Warnings,
        [property: JsonPropertyName("reason")] string? Reason)
    {
        [JsonIgnore]
        public string Name => Size is null ? Method : $"{Method} n={Size}";
    }

    /// <summary>One candidate: its values, n of the expected selection cells, the dev loss's mean and 95% CI (null until defined).</summary>
    public sealed record Candidate(
        [property: JsonPropertyName("label")] string Label,
        [property: JsonPropertyName("values")] IReadOnlyDictionary<string, string> Values,
        [property: JsonPropertyName("n")] int N,
        [property: JsonPropertyName("expected")] int Expected,
        [property: JsonPropertyName("dev_loss_mean")] double? Mean,
        [property: JsonPropertyName("dev_loss_ci_low")] double? CiLow,
        [property: JsonPropertyName("dev_loss_ci_high")] double? CiHigh,
        [property: JsonPropertyName("chosen")] bool Chosen);

    /// <summary>Every warning of every scope.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> Warnings => Scopes.SelectMany(s => s.Warnings).ToList();

    public static SelectionReport From(string sweepId, IReadOnlyList<SelectionDecision> decisions)
    {
        ArgumentNullException.ThrowIfNull(decisions);
        var scopes = decisions.Select(d =>
        {
            var chosenLabel = d.Choice is null ? null : SelectionSpec.Label(d.Choice.Chosen);
            var candidates = d.Evidence.Select(e =>
            {
                var label = SelectionSpec.Label(e.Candidate);
                return new Candidate(label, e.Candidate, e.DevLoss.N, e.Expected, Defined(e.DevLoss.Mean), Defined(e.DevLoss.CiLow),
                    Defined(e.DevLoss.CiHigh), label == chosenLabel);
            }).ToList();
            var state = d.Choice is not null ? Chosen : d.FailedCells.Count > 0 ? Blocked : Awaiting;
            return new Scope(d.Method, d.Size, state, d.Choice?.Chosen, d.Finished, d.Expected, candidates, d.Choice?.Warnings ?? [],
                d.Choice is null ? d.Waiting : null);
        }).ToList();
        return new SelectionReport(sweepId, SelectionSpec.ByDevLoss, scopes);
    }

    /// <summary>One line per scope for <c>status</c> and the run's summary, e.g. <c>lora: chosen learning_rate=0.001</c>.</summary>
    public IReadOnlyList<string> Lines() => Scopes.Select(s => s.State switch
    {
        Chosen => $"{s.Name}: chosen {SelectionSpec.Label(s.ChosenValues!)} ({s.Finished}/{s.Expected} selection cells)",
        Blocked => $"{s.Name}: blocked: {s.Reason}",
        _ => $"{s.Name}: {Awaiting} ({s.Finished}/{s.Expected} selection cells finished)",
    }).ToList();

    /// <summary>The table as text: a block per scope, the chosen candidate marked with <c>*</c>.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Selection of sweep {SweepId} (by the best step's dev loss; mean ± 95% CI over n of the expected selection cells; * = chosen):");
        foreach (var scope in Scopes)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{scope.Name}: {(scope.State == Chosen ? "chosen " + SelectionSpec.Label(scope.ChosenValues!) : scope.State)}");
            var width = Math.Max("candidate".Length, scope.Candidates.Max(c => c.Label.Length));
            text.AppendLine(CultureInfo.InvariantCulture, $"    {"candidate".PadRight(width)}  {"n/exp",-6}  dev loss");
            foreach (var c in scope.Candidates)
            {
                var loss = c.Mean is null ? "—" : c.CiLow is null ? F(c.Mean.Value) : $"{F(c.Mean.Value)} ± {F((c.CiHigh!.Value - c.CiLow.Value) / 2)}";
                text.AppendLine(CultureInfo.InvariantCulture, $"  {(c.Chosen ? "*" : " ")} {c.Label.PadRight(width)}  {$"{c.N}/{c.Expected}",-6}  {loss}");
            }

            if (scope.State != Chosen && scope.Reason is not null)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"    ({scope.Reason})");
            }
        }

        return text.ToString();
    }

    private static double? Defined(double x) => double.IsFinite(x) ? x : null;

    private static string F(double x) => x.ToString("F4", CultureInfo.InvariantCulture);
}
