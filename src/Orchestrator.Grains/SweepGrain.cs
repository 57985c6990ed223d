using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Results;

namespace Orchestrator.Grains;

/// <summary>
/// One sweep. On submit it records the sweep and its cells in the results database (the source of truth),
/// leaves out cells that already have a successful result (resubmitting does no new work), and queues the rest.
/// </summary>
public sealed class SweepGrain(IResultStore store, ILogger<SweepGrain> logger) : Grain, ISweepGrain
{
    private string QueueName => ITrialQueueGrain.DefaultName;

    public async Task<SubmitResult> SubmitAsync(SweepSubmission submission)
    {
        var sweepId = this.GetPrimaryKeyString();
        if (submission.SweepId != sweepId)
        {
            throw new ArgumentException($"submission for sweep {submission.SweepId} sent to sweep grain {sweepId}");
        }

        var descriptors = submission.Cells.Select(c => Describe(c)).ToList();
        await store.SaveSweepAsync(
            new SweepRecord(sweepId, submission.Name, submission.SpecYaml, submission.SpecHash, DateTimeOffset.UtcNow, submission.Cells.Count),
            descriptors);

        var done = await store.GetSucceededKeysAsync(submission.Cells.Select(c => c.CellKey));
        var todo = submission.Cells.Where(c => !done.Contains(c.CellKey)).ToList();
        var queue = GrainFactory.GetGrain<ITrialQueueGrain>(QueueName);
        var queued = await queue.EnqueueAsync(sweepId, todo, submission.Cells.Count - todo.Count);
        logger.LogInformation("Sweep {SweepId}: {Total} cells, {Done} already done, {Queued} queued",
            sweepId, submission.Cells.Count, submission.Cells.Count - todo.Count, queued);
        return new SubmitResult(sweepId, submission.Cells.Count, queued, submission.Cells.Count - todo.Count);
    }

    public Task<SweepProgress> GetProgressAsync() =>
        GrainFactory.GetGrain<ITrialQueueGrain>(QueueName).GetProgressAsync(this.GetPrimaryKeyString());

    private static CellDescriptor Describe(CellWork work)
    {
        var cell = CellDefinition.FromJson(work.CellJson);
        if (cell.Key != work.CellKey)
        {
            throw new ArgumentException($"cell {work.Label}: key {work.CellKey} does not match its definition ({cell.Key})");
        }

        return new CellDescriptor(work.CellKey, cell.Dataset.Kind, cell.Split, cell.Method, cell.Size, cell.Subsample, cell.Seed, work.CellJson);
    }
}
