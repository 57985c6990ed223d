using System.Text.Json;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>
/// The selection of a stored sweep as <c>results --selection</c>, <c>status</c> and the page show it. The choice itself is made by the
/// sweep grain (<see cref="Grains.SweepSelection"/>) in every mode.
/// </summary>
public static class SelectionReports
{
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

        return SelectionReport.From(sweep.SweepId, Decisions(spec, sweep, await store.GetSweepCellsAsync(sweep.SweepId, ct),
            await Grains.SweepSelection.AttemptLimitsAsync(store, sweep.SweepId, ct)), await store.GetSelectionsAsync(sweep.SweepId, ct));
    }

    /// <summary>As <see cref="ReportAsync"/>, from the sweep's stored cells (<paramref name="rows"/>) and choices already read.</summary>
    /// <param name="attemptLimits">Each unfinished cell's attempt limit (<see cref="Grains.SweepSelection.AttemptLimitsAsync"/>): a selection
    /// cell that failed an attempt before its last is being retried, not failed.</param>
    public static SelectionReport? Report(SweepRecord sweep, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows,
        IReadOnlyList<StoredSelection> stored, IReadOnlyDictionary<string, int> attemptLimits)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        var spec = SpecParser.Parse(sweep.SpecYaml, OrchestratorVocabulary.Default, sweep.SweepId);
        return spec.Methods.All(m => m.Selection is null) ? null : SelectionReport.From(sweep.SweepId, Decisions(spec, sweep, rows, attemptLimits), stored);
    }

    private static IReadOnlyList<SelectionDecision> Decisions(SweepSpec spec, SweepRecord sweep, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows,
        IReadOnlyDictionary<string, int> attemptLimits) =>
        Grains.SweepSelection.Decide(spec, sweep, rows, attemptLimits);
}
