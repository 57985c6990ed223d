using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Results;

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
        [property: JsonPropertyName("candidates")] IReadOnlyList<Orchestrator.Grains.SelectionCandidate> Candidates,
        [property: JsonPropertyName("warnings")] IReadOnlyList<string> Warnings,
        [property: JsonPropertyName("reason")] string? Reason)
    {
        /// <summary>When the stored choice was made (null: none stored).</summary>
        [JsonPropertyName("decided_at")]
        public DateTimeOffset? DecidedAt { get; init; }

        [JsonIgnore]
        public string Name => Size is null ? Method : $"{Method} n={Size}";
    }

    /// <summary>Every warning of every scope.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> Warnings => Scopes.SelectMany(s => s.Warnings).ToList();

    /// <summary>
    /// The report from the decisions made from the stored selection cells and the choices stored with the sweep. A stored choice
    /// is the one shown (its grid ran with it); a complete selection without a stored choice waits for the next run to store it.
    /// </summary>
    public static SelectionReport From(string sweepId, IReadOnlyList<SelectionDecision> decisions, IReadOnlyList<StoredSelection> stored)
    {
        ArgumentNullException.ThrowIfNull(decisions);
        ArgumentNullException.ThrowIfNull(stored);
        var scopes = decisions.Select(d =>
        {
            var kept = stored.FirstOrDefault(x => x.Method == d.Method && x.Size == d.Size);
            var chosen = kept?.Chosen;
            var warnings = new List<string>();
            string state;
            string? reason = null;
            if (kept is not null)
            {
                state = Chosen;
                if (d.Choice is not null && SelectionSpec.Label(d.Choice.Chosen) != SelectionSpec.Label(kept.Chosen))
                {
                    warnings.Add($"{d.Scope}: the stored selection cells now favour {SelectionSpec.Label(d.Choice.Chosen)}, but the choice stored " +
                                 $"at {kept.DecidedAt:u} (the grid's) is {SelectionSpec.Label(kept.Chosen)}");
                }
                else if (d.Choice is not null)
                {
                    warnings.AddRange(d.Choice.Warnings);
                }
            }
            else if (d.FailedCells.Count > 0)
            {
                state = Blocked;
                reason = d.Waiting;
            }
            else
            {
                state = Awaiting;
                reason = d.Choice is null
                    ? d.Waiting
                    : $"{d.Scope}: every selection cell has finished; the next run (or submit --watch) of the spec stores the choice and adds the grid";
            }

            return new Scope(d.Method, d.Size, state, chosen, d.Finished, d.Expected, CandidatesOf(d, chosen), warnings, reason)
            {
                DecidedAt = kept?.DecidedAt,
            };
        }).ToList();
        return new SelectionReport(sweepId, SelectionSpec.ByDevLoss, scopes);
    }

    /// <summary>Each candidate's evidence of a decision, <paramref name="chosen"/> marked (the evidence stored with a choice).</summary>
    public static IReadOnlyList<Orchestrator.Grains.SelectionCandidate> CandidatesOf(SelectionDecision decision, IReadOnlyDictionary<string, string>? chosen) =>
        Orchestrator.Grains.SelectionCandidate.Of(decision, chosen);

    /// <summary>One line per scope for <c>status</c> and the run's summary, e.g. <c>lora: chosen learning_rate=0.001</c>.</summary>
    public IReadOnlyList<string> Lines() => Scopes.Select(s => s.State switch
    {
        Chosen => $"{s.Name}: chosen {SelectionSpec.Label(s.ChosenValues!)} ({s.Finished}/{s.Expected} selection cells)",
        Blocked => $"{s.Name}: blocked: {s.Reason}",
        _ => $"{s.Name}: {Awaiting} ({s.Finished}/{s.Expected} selection cells finished" +
             (s.Finished == s.Expected ? "; the next run or submit --watch of the spec stores the choice and adds the grid)" : ")"),
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

    private static string F(double x) => x.ToString("F4", CultureInfo.InvariantCulture);
}
