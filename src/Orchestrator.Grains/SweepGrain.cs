using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Results;

namespace Orchestrator.Grains;

/// <summary>
/// One sweep (key: its id). It records the sweep and its cells in the results database (the source of truth),
/// leaves out cells that already have a successful result (resubmitting does no new work), and drives the queue
/// for the sweep's lifecycle: extend, cancel, resume, rerun-failed.
/// </summary>
public sealed class SweepGrain(IResultStore store, ILogger<SweepGrain> logger) : Grain, ISweepGrain
{
    private string SweepId => this.GetPrimaryKeyString();

    private ITrialQueueGrain Queue => GrainFactory.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);

    public Task<SubmitResult> SubmitAsync(SweepSubmission submission) => SaveAndQueueAsync(submission, "submitted");

    public async Task<SubmitResult> ExtendAsync(SweepSubmission submission)
    {
        _ = await store.FindSweepAsync(SweepId) ?? throw new ArgumentException($"cannot extend sweep '{SweepId}': it does not exist");
        var existing = await store.GetSweepCellsAsync(SweepId);
        var kept = submission.Cells.Select(c => c.CellKey).ToHashSet(StringComparer.Ordinal);
        var dropped = existing.Where(c => !kept.Contains(c.Cell.CellKey)).ToList();
        if (dropped.Count > 0)
        {
            var example = dropped[0].Cell;
            throw new ArgumentException(
                $"cannot extend sweep '{SweepId}': extend may only add seeds, subsamples, sizes or methods, but {dropped.Count} of its " +
                $"{existing.Count} existing cells would be dropped or changed (for example {example.Method} n={example.Size} sub{example.Subsample} seed{example.Seed}); " +
                "submit the changed spec as a new sweep instead");
        }

        return await SaveAndQueueAsync(submission, "extended");
    }

    public async Task CancelAsync()
    {
        await RequireSweepAsync();
        await store.SetSweepStatusAsync(SweepId, SweepStatus.Cancelled);
        await Queue.CancelSweepAsync(SweepId);
        logger.LogInformation("Sweep {SweepId} cancelled", SweepId);
    }

    public async Task<int> ResumeAsync()
    {
        await RequireSweepAsync();
        await store.SetSweepStatusAsync(SweepId, SweepStatus.Active);
        return await Queue.ReloadSweepAsync(SweepId, resetFailed: false);
    }

    public async Task<int> RerunFailedAsync()
    {
        await RequireSweepAsync();
        await store.SetSweepStatusAsync(SweepId, SweepStatus.Active);
        return await Queue.ReloadSweepAsync(SweepId, resetFailed: true);
    }

    public Task<SweepProgress> GetProgressAsync() => Queue.GetProgressAsync(SweepId);

    public Task<IReadOnlyList<CellState>> GetCellsAsync() => Queue.GetCellsAsync(SweepId);

    private async Task<SubmitResult> SaveAndQueueAsync(SweepSubmission submission, string verb)
    {
        if (submission.SweepId != SweepId)
        {
            throw new ArgumentException($"submission for sweep {submission.SweepId} sent to sweep grain {SweepId}");
        }

        var descriptors = submission.Cells.Select(Describe).ToList();

        // Activate the queue before the sweep is in the database: an activation rebuilds the queue from the
        // database, and must not count this submission's cells as already queued.
        await Queue.GetProgressAsync(SweepId);
        await store.SaveSweepAsync(
            new SweepRecord(SweepId, submission.Name, submission.SpecYaml, submission.SpecHash, DateTimeOffset.UtcNow, submission.Cells.Count)
            {
                Status = SweepStatus.Active,
                MaxAttempts = submission.MaxAttempts,
                LeaseSeconds = submission.LeaseSeconds,
                Metrics = submission.Metrics,
                RequiredDevice = submission.RequiredDevice,
                ArtifactRetention = submission.ArtifactRetention,
            },
            descriptors);

        var done = await store.GetSucceededKeysAsync(submission.Cells.Select(c => c.CellKey));

        // A finished cell whose trained method a later stage needs but that kept none (it ran in a sweep without stages, or
        // its artifact was collected) is trained again: its dependants cannot run without it.
        var mustKeep = submission.Cells.Where(c => c.KeepArtifact && done.Contains(c.CellKey)).Select(c => c.CellKey).ToList();
        if (mustKeep.Count > 0)
        {
            var stored = await store.GetArtifactsAsync(mustKeep);
            done = done.Where(k => !mustKeep.Contains(k) || stored.ContainsKey(k)).ToHashSet(StringComparer.Ordinal);
        }

        var todo = submission.Cells.Where(c => !done.Contains(c.CellKey)).ToList();
        if (!submission.RetryFailed)
        {
            var failed = (await store.GetUnfinishedCellsAsync(SweepId)).Where(u => u.LastError is not null).Select(u => u.CellKey).ToHashSet(StringComparer.Ordinal);
            todo = todo.Where(c => !failed.Contains(c.CellKey)).ToList();
        }

        var queued = await Queue.EnqueueAsync(SweepId, todo, submission.Cells.Count - todo.Count);
        logger.LogInformation("Sweep {SweepId} {Verb}: {Total} cells, {Done} already done, {Queued} queued",
            SweepId, verb, submission.Cells.Count, submission.Cells.Count - todo.Count, queued);
        return new SubmitResult(SweepId, submission.Cells.Count, queued, submission.Cells.Count - todo.Count);
    }

    private async Task RequireSweepAsync()
    {
        if (await store.FindSweepAsync(SweepId) is not { } sweep || sweep.SweepId != SweepId)
        {
            throw new ArgumentException($"no sweep with id '{SweepId}'");
        }
    }

    private static CellDescriptor Describe(CellWork work)
    {
        var cell = CellDefinition.FromJson(work.CellJson);
        if (cell.Key != work.CellKey)
        {
            throw new ArgumentException($"cell {work.Label}: key {work.CellKey} does not match its definition ({cell.Key})");
        }

        return new CellDescriptor(work.CellKey, cell.Dataset.Kind, cell.Split, cell.ResultsMethod, cell.Size, cell.Subsample, cell.Seed, work.CellJson);
    }
}
