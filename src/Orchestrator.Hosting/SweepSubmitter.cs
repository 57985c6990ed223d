using Orchestrator.Abstractions;
using Orchestrator.Data;

namespace Orchestrator.Hosting;

/// <summary>Client-side submission: sends a planned (already validated) sweep to its sweep grain.</summary>
public static class SweepSubmitter
{
    public static Task<SubmitResult> SubmitAsync(IGrainFactory grains, SweepPlan plan)
    {
        var work = plan.Cells
            .Select(c => new CellWork(plan.SweepId, c.Key, c.ToCanonicalJson(), c.Label, plan.Spec.Execution.MaxAttempts,
                plan.Spec.Execution.LeaseSeconds, plan.Spec.Metrics))
            .ToList();
        return grains.GetGrain<ISweepGrain>(plan.SweepId)
            .SubmitAsync(new SweepSubmission(plan.SweepId, plan.Spec.Name, plan.SpecYaml, plan.SpecHash, work));
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
