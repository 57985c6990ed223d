using System.Text.Json;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>
/// What a sweep with <c>selection:</c> did: the first submission, the decisions, and the sweep with the chosen grid.
/// <see cref="Reused"/> counts the cells that had succeeded before this run (the extend's "already done" also counts the cells
/// the first phase just trained).
/// </summary>
public sealed record SelectionRun(SubmitResult First, IReadOnlyList<SelectionDecision> Decisions, SubmitResult Final, int Reused,
    IReadOnlyList<StoredSelection> Stored)
{
    /// <summary>The choices and their evidence as <c>results --selection</c> shows them.</summary>
    public SelectionReport Report => SelectionReport.From(Final.SweepId, Decisions, Stored);

    /// <summary>The whole run as one submission: every cell, those reused, and those queued in either phase.</summary>
    public SubmitResult Overall => new(Final.SweepId, Final.Total, First.Queued + Final.Queued, Reused);
}

/// <summary>
/// Runs a sweep with <c>selection:</c> from a client that stays attached: it submits the selection cells (with the grid of the
/// methods that select nothing), waits until they have finished, decides from the stored selection cells
/// (<see cref="SelectionRound"/>), and extends the sweep with each method's grid at its chosen values. Everything is keyed, so a
/// second run reuses the finished cells and makes the same choice.
/// </summary>
public static class SelectionRunner
{
    /// <param name="waitAsync">Given the first submission, waits until the sweep is complete (a progress display, or a plain poll).</param>
    public static async Task<SelectionRun> RunAsync(IGrainFactory grains, IResultStore store, SweepPlan plan,
        Func<SubmitResult, CancellationToken, Task> waitAsync, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(waitAsync);

        // A sweep run before keeps its members (its chosen grid among them) while the selection is checked again.
        var kept = new List<CellDefinition>();
        if (await store.FindSweepAsync(plan.SweepId, ct) is { } existing && existing.SweepId == plan.SweepId)
        {
            kept.AddRange((await store.GetSweepCellsAsync(plan.SweepId, ct)).Select(c => CellDefinition.FromJson(c.Cell.CellJson)));
        }

        var first = Union(SelectionRound.FirstPhase(plan), kept);
        var submitted = await SweepSubmitter.SubmitAsync(grains, plan with { Cells = first });
        await waitAsync(submitted, ct);
        var decisions = SelectionRound.Decide(plan, await StoredAsync(store, plan.SweepId, ct));

        // The choice is stored with the sweep before its grid is added; one stored before (an earlier run) is the one the grid uses.
        var decidedAt = DateTimeOffset.UtcNow;
        await store.SaveSelectionsAsync(decisions.Where(d => d.Choice is not null).Select(d => new StoredSelection(plan.SweepId, d.Method, d.Size,
            d.Choice!.Chosen, Orchestrator.Grains.SweepSelection.EvidenceJson(d, d.Choice.Chosen), decidedAt)).ToList(), ct);
        var stored = await store.GetSelectionsAsync(plan.SweepId, ct);
        decisions = decisions.Select(d => d.Choice is not null && stored.FirstOrDefault(x => x.Method == d.Method && x.Size == d.Size) is { } kept
            ? d with { Choice = d.Choice with { Chosen = kept.Chosen } }
            : d).ToList();
        var firstDone = (await store.GetSucceededKeysAsync(first.Select(c => c.Key), ct)).Count;
        var all = Union(first, SelectionRound.ChosenGrid(plan, decisions));
        // A failed selection cell stays failed: the decision was made from it (rerun-failed, or the next run, retries it).
        var final = await SweepSubmitter.ExtendAsync(grains, plan with { Cells = all }, plan.SweepId, retryFailed: false);

        // The chosen grid's cells done now were done before this run: the first phase did not queue them.
        return new SelectionRun(submitted, decisions, final, submitted.AlreadyDone + Math.Max(0, final.AlreadyDone - firstDone), stored);
    }

    /// <summary>
    /// The selection of a stored sweep: its choices as stored and the evidence of its stored selection cells (no data files are
    /// read: the selection cells are expanded again from the identities the stored ones carry); null when its spec selects nothing.
    /// </summary>
    public static async Task<SelectionReport?> ReportAsync(IResultStore store, SweepRecord sweep, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(sweep);
        var spec = SpecParser.Parse(sweep.SpecYaml, OrchestratorVocabulary.Default, sweep.SweepId);
        if (spec.Methods.All(m => m.Selection is null))
        {
            return null;
        }

        return SelectionReport.From(sweep.SweepId, Decisions(spec, sweep, await store.GetSweepCellsAsync(sweep.SweepId, ct)),
            await store.GetSelectionsAsync(sweep.SweepId, ct));
    }

    /// <summary>As <see cref="ReportAsync"/>, from the sweep's stored cells (<paramref name="rows"/>) and choices already read.</summary>
    public static SelectionReport? Report(SweepRecord sweep, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows,
        IReadOnlyList<StoredSelection> stored)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        var spec = SpecParser.Parse(sweep.SpecYaml, OrchestratorVocabulary.Default, sweep.SweepId);
        return spec.Methods.All(m => m.Selection is null) ? null : SelectionReport.From(sweep.SweepId, Decisions(spec, sweep, rows), stored);
    }

    private static IReadOnlyList<SelectionDecision> Decisions(SweepSpec spec, SweepRecord sweep, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows) =>
        Grains.SweepSelection.Decide(spec, sweep, rows);

    /// <summary>The stored selection cells of a sweep, by key.</summary>
    public static async Task<IReadOnlyDictionary<string, SelectionCellOutcome>> StoredAsync(IResultStore store, string sweepId, CancellationToken ct) =>
        Outcomes(await store.GetSweepCellsAsync(sweepId, ct));

    private static Dictionary<string, SelectionCellOutcome> Outcomes(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows) =>
        Grains.SweepSelection.Outcomes(rows);

    private static List<CellDefinition> Union(IEnumerable<CellDefinition> first, IEnumerable<CellDefinition> second) =>
        first.Concat(second).DistinctBy(c => c.Key, StringComparer.Ordinal).ToList();
}
