using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Grains;

/// <summary>
/// A stored sweep's selection, read from the database alone: the decision per method (and size) from its stored selection
/// cells (<see cref="SelectionRound.Decide"/>), the choices to store, and which stored candidate grid cells join the sweep once
/// their candidate is chosen. The sweep grain and every report use it, so they agree whichever process made the choice.
/// </summary>
public static class SweepSelection
{
    /// <summary>
    /// The decisions from the sweep's stored cells (<paramref name="rows"/>); empty when its spec selects nothing. A selection cell
    /// whose stored failure is not its last allowed attempt (<paramref name="attemptLimits"/>, by cell key: <see cref="AttemptLimitsAsync"/>)
    /// is being tried again, so it counts as unfinished, not as a failure that blocks its method.
    /// </summary>
    public static IReadOnlyList<SelectionDecision> Decide(SweepRecord sweep, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows,
        IReadOnlyDictionary<string, int> attemptLimits) =>
        Decide(SpecParser.Parse(sweep.SpecYaml, OrchestratorVocabulary.Default, sweep.SweepId), sweep, rows, attemptLimits);

    /// <inheritdoc cref="Decide(SweepRecord, IReadOnlyList{ValueTuple{CellDescriptor, CellResultRecord}}, IReadOnlyDictionary{string, int})"/>
    public static IReadOnlyList<SelectionDecision> Decide(SweepSpec spec, SweepRecord sweep, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows,
        IReadOnlyDictionary<string, int> attemptLimits)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(sweep);
        ArgumentNullException.ThrowIfNull(rows);
        if (spec.Methods.All(m => m.Selection is null))
        {
            return [];
        }

        // The selection cells are expanded again from the identities a stored one carries: no data files are read.
        var any = rows.Select(r => CellDefinition.FromJson(r.Cell.CellJson)).FirstOrDefault(c => c.Stage == SweepSpec.SelectionStage);
        if (any is null)
        {
            return [];
        }

        var plan = new SweepPlan(spec, sweep.SpecYaml, sweep.SpecHash, any.Dataset, any.Model, [])
        {
            Selection = CellExpander.ExpandSelection(spec, any.Dataset, any.Model),
        };
        return SelectionRound.Decide(plan, Outcomes(rows, attemptLimits));
    }

    /// <summary>
    /// Each unfinished cell's attempt limit, by key (from the database; a cell whose stored failure has a lower attempt number
    /// than its limit is queued again).
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, int>> AttemptLimitsAsync(IResultStore store, string sweepId, CancellationToken ct = default) =>
        (await store.GetUnfinishedCellsAsync(sweepId, ct)).ToDictionary(u => u.CellKey, u => u.AttemptLimit, StringComparer.Ordinal);

    /// <summary>The finished selection cells of a sweep, by key: succeeded, or failed on their last allowed attempt.</summary>
    public static Dictionary<string, SelectionCellOutcome> Outcomes(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows,
        IReadOnlyDictionary<string, int> attemptLimits) =>
        rows.Where(r => r.Result is not null && r.Cell.Method.StartsWith(SweepSpec.SelectionStage + "/", StringComparison.Ordinal))
            .Where(r => r.Result!.Status == CellStatus.Succeeded || r.Result.Attempt >= attemptLimits.GetValueOrDefault(r.Cell.CellKey))
            .ToDictionary(r => r.Cell.CellKey, r => r.Result!.Status == CellStatus.Succeeded
                ? new SelectionCellOutcome(true, SelectionRound.BestDevLoss(r.Result.ProvenanceJson), null)
                : new SelectionCellOutcome(false, double.NaN, r.Result.Error), StringComparer.Ordinal);

    /// <summary>The choices made by <paramref name="decisions"/>, with their evidence, as stored with the sweep.</summary>
    public static IReadOnlyList<StoredSelection> Choices(string sweepId, IReadOnlyList<SelectionDecision> decisions, DateTimeOffset decidedAt) =>
        decisions.Where(d => d.Choice is not null)
            .Select(d => new StoredSelection(sweepId, d.Method, d.Size, d.Choice!.Chosen, EvidenceJson(d, d.Choice.Chosen), decidedAt))
            .ToList();

    /// <summary>Each candidate's evidence of a decision, <paramref name="chosen"/> marked, as JSON (the evidence stored with a choice).</summary>
    public static string EvidenceJson(SelectionDecision decision, IReadOnlyDictionary<string, string>? chosen) =>
        JsonSerializer.Serialize(SelectionCandidate.Of(decision, chosen));

    /// <summary>
    /// The stored candidate cells that join the sweep now: for each stored choice, its candidate's cells (of its size, with a
    /// per-size choice) that are not among the sweep's cells (<paramref name="members"/>) yet.
    /// </summary>
    public static IReadOnlyList<CandidateCell> Joining(IReadOnlyList<StoredSelection> choices, IReadOnlyList<CandidateCell> candidates,
        IReadOnlySet<string> members)
    {
        ArgumentNullException.ThrowIfNull(choices);
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(members);
        return choices.SelectMany(choice => Of(candidates, choice.Method, choice.Size, choice.Chosen))
            .Where(c => !members.Contains(c.CellKey))
            .DistinctBy(c => c.CellKey, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// How many grid cells still wait for a choice: per decision without a stored choice and without a failed selection cell
    /// (whose grid does not run), the cells of one candidate.
    /// </summary>
    public static int Waiting(IReadOnlyList<SelectionDecision> decisions, IReadOnlyList<StoredSelection> choices, IReadOnlyList<CandidateCell> candidates)
    {
        ArgumentNullException.ThrowIfNull(decisions);
        ArgumentNullException.ThrowIfNull(choices);
        ArgumentNullException.ThrowIfNull(candidates);
        return decisions
            .Where(d => d.FailedCells.Count == 0 && !choices.Any(c => c.Method == d.Method && c.Size == d.Size))
            .Sum(d => candidates.Where(c => c.Method == d.Method).Select(c => c.Candidate).FirstOrDefault() is { } first
                ? Of(candidates, d.Method, d.Size, first).Count()
                : 0);
    }

    private static IEnumerable<CandidateCell> Of(IReadOnlyList<CandidateCell> candidates, string method, int? size, IReadOnlyDictionary<string, string> candidate)
    {
        var key = SelectionCandidate.Key(candidate);
        return candidates.Where(c => c.Method == method && SelectionCandidate.Key(c.Candidate) == key
            && (size is null || CellDefinition.FromJson(c.CellJson).Size == size));
    }
}
