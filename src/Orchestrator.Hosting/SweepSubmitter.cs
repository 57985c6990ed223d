using Orchestrator.Abstractions;
using Orchestrator.Data;

namespace Orchestrator.Hosting;

/// <summary>Client-side submission: sends a planned (already validated) sweep to its sweep grain.</summary>
public static class SweepSubmitter
{
    public static Task<SubmitResult> SubmitAsync(IGrainFactory grains, SweepPlan plan) =>
        grains.GetGrain<ISweepGrain>(plan.SweepId).SubmitAsync(ToSubmission(plan, plan.SweepId));

    /// <summary>Adds the plan's new cells to the existing sweep <paramref name="sweepId"/>.</summary>
    /// <param name="retryFailed">False: cells that failed stay failed (<see cref="SweepSubmission.RetryFailed"/>).</param>
    public static Task<SubmitResult> ExtendAsync(IGrainFactory grains, SweepPlan plan, string sweepId, bool retryFailed = true) =>
        grains.GetGrain<ISweepGrain>(sweepId).ExtendAsync(ToSubmission(plan, sweepId) with { RetryFailed = retryFailed });

    /// <summary>
    /// Submits a sweep with <c>selection:</c> that the cluster finishes on its own: the selection cells (with the grid of the methods
    /// that select nothing) now, and every candidate's grid for the sweep grain to queue the chosen one
    /// (<see cref="SelectionRound.CandidateGrids"/>, refused over <paramref name="maxCells"/>). <paramref name="extend"/>: add to the
    /// existing sweep <paramref name="sweepId"/>.
    /// </summary>
    public static Task<SubmitResult> SubmitSelectingAsync(IGrainFactory grains, SweepPlan plan, long maxCells, string? extend = null) =>
        SubmitSelectingAsync(grains, plan, SelectionRound.CandidateGrids(plan, maxCells), extend);

    /// <summary>As above, with every candidate's grid already planned (<see cref="SelectionRound.CandidateGrids"/>).</summary>
    public static Task<SubmitResult> SubmitSelectingAsync(IGrainFactory grains, SweepPlan plan, IReadOnlyList<CandidateCells> grids, string? extend = null)
    {
        var sweepId = extend ?? plan.SweepId;
        var submission = ToSubmission(plan with { Cells = SelectionRound.FirstPhase(plan) }, sweepId) with
        {
            Candidates = grids.Select(g => new CandidateGrid(g.Method, g.Candidate, Works(plan, g.Cells, sweepId))).ToList(),
        };
        var sweep = grains.GetGrain<ISweepGrain>(sweepId);
        return extend is null ? sweep.SubmitAsync(submission) : sweep.ExtendAsync(submission);
    }

    private static List<CellWork> Works(SweepPlan plan, IReadOnlyList<Core.Cells.CellDefinition> cells, string sweepId)
    {
        var execution = plan.Spec.Execution;
        var needed = plan.Cells.SelectMany(c => c.Dependencies).ToHashSet(StringComparer.Ordinal);
        return cells.Select(c => new CellWork(sweepId, c.Key, c.ToCanonicalJson(), c.Label, execution.MaxAttempts, execution.LeaseSeconds,
            plan.Spec.Metrics, execution.Device, c.QueuePackGroup, c.Needs, Core.Specs.ExecutionSpec.KeepsArtifact(execution.Artifacts, needed.Contains(c.Key))))
            .ToList();
    }

    public static SweepSubmission ToSubmission(SweepPlan plan, string sweepId)
    {
        var execution = plan.Spec.Execution;
        var needed = plan.Cells.SelectMany(c => c.Dependencies).ToHashSet(StringComparer.Ordinal);
        var work = plan.Cells
            .Select(c =>
            {
                var keep = Core.Specs.ExecutionSpec.KeepsArtifact(execution.Artifacts, needed.Contains(c.Key));
                return new CellWork(sweepId, c.Key, c.ToCanonicalJson(), c.Label, execution.MaxAttempts,
                    execution.LeaseSeconds, plan.Spec.Metrics, execution.Device, c.QueuePackGroup, c.Needs, keep);
            })
            .ToList();
        return new SweepSubmission(sweepId, plan.Spec.Name, plan.SpecYaml, plan.SpecHash, work,
            execution.MaxAttempts, execution.LeaseSeconds, plan.Spec.Metrics, execution.Device, execution.Artifacts);
    }

    /// <summary>Polls the sweep's progress until it is complete (done or failed for every cell).</summary>
    public static async Task<SweepProgress> WaitAsync(IGrainFactory grains, string sweepId, Action<SweepProgress>? onProgress,
        TimeSpan poll, CancellationToken ct)
    {
        var sweep = grains.GetGrain<ISweepGrain>(sweepId);
        while (true)
        {
            var progress = await sweep.GetProgressAsync();
            onProgress?.Invoke(progress);
            if (progress.IsComplete)
            {
                return progress;
            }

            await Task.Delay(poll, ct);
        }
    }
}
