using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Core.Specs;
using Orchestrator.Results;

namespace Orchestrator.Grains;

/// <summary>
/// What the queue loads from the database when it activates: every active sweep (cluster mode: a restarted coordinator
/// carries on with all of them), or nothing (embedded mode, where <c>run A</c> must not train the leftovers of an
/// interrupted sweep B; running, resuming or extending B carries it on). Register one in the silo's services; default: restore.
/// </summary>
public sealed record QueueRestore(bool ActiveSweeps)
{
    public static QueueRestore Restore { get; } = new(true);

    public static QueueRestore Nothing { get; } = new(false);
}

/// <summary>
/// Orleans face of <see cref="TrialQueue"/>. Its state is a cache of the database: on activation (first use, or
/// after the coordinator restarted) it rebuilds every active sweep from the cells that have no successful result,
/// and it writes attempt counts behind (about once a second) so that retry limits survive restarts.
/// </summary>
public sealed class TrialQueueGrain(IResultStore store, TimeProvider clock, ILogger<TrialQueueGrain> logger, IServiceProvider services) : Grain, ITrialQueueGrain
{
    private readonly QueueRestore _restore = (QueueRestore?)services.GetService(typeof(QueueRestore)) ?? QueueRestore.Restore;
    private static readonly TimeSpan FlushPeriod = TimeSpan.FromSeconds(1);
    private readonly TrialQueue _queue = new(clock);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var sweeps = _restore.ActiveSweeps ? await store.GetSweepsAsync(SweepStatus.Active, cancellationToken) : [];
        var pending = 0;
        foreach (var sweep in sweeps)
        {
            pending += await LoadAsync(sweep, resetFailed: false, cancellationToken);
        }

        logger.LogInformation("Queue {Queue} activated: {Sweeps} active sweep(s), {Pending} cell(s) pending", this.GetPrimaryKeyString(), sweeps.Count, pending);
        this.RegisterGrainTimer(FlushAttemptsAsync, new GrainTimerCreationOptions(FlushPeriod, FlushPeriod) { Interleave = true });
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        await FlushAttemptsAsync(cancellationToken);

    public Task<int> EnqueueAsync(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone) =>
        Task.FromResult(_queue.Enqueue(sweepId, cells, alreadyDone));

    public Task<CellLease?> LeaseAsync(WorkerCapabilities worker) =>
        Task.FromResult(worker.FreeSlots > 0 ? _queue.Lease(worker) : null);

    public Task<bool> RenewAsync(string leaseId) => Task.FromResult(_queue.Renew(leaseId));

    public Task<bool> CompleteAsync(CellCompletion completion) => Task.FromResult(_queue.Complete(completion));

    public Task<SweepProgress> GetProgressAsync(string sweepId) => Task.FromResult(_queue.Progress(sweepId));

    public Task<IReadOnlyList<CellState>> GetCellsAsync(string sweepId) => Task.FromResult(_queue.Cells(sweepId));

    public Task CancelSweepAsync(string sweepId)
    {
        _queue.Cancel(sweepId);
        return Task.CompletedTask;
    }

    public async Task<int> ReloadSweepAsync(string sweepId, bool resetFailed)
    {
        var sweep = await store.FindSweepAsync(sweepId) ?? throw new ArgumentException($"no sweep '{sweepId}'");
        var pending = await LoadAsync(sweep, resetFailed, CancellationToken.None);
        await FlushAttemptsAsync(CancellationToken.None);
        return pending;
    }

    private async Task<int> LoadAsync(SweepRecord sweep, bool resetFailed, CancellationToken ct)
    {
        var unfinished = await store.GetUnfinishedCellsAsync(sweep.SweepId, ct);
        var cells = unfinished.Select(c => Parse(c.CellJson)).ToList();

        // The sweep's retention policy decides again which trained methods are kept: with `needed`, those that unfinished
        // cells of a later stage need.
        var needed = cells.SelectMany(c => c?.Dependencies ?? []).ToHashSet(StringComparer.Ordinal);
        var work = unfinished
            .Select((c, i) =>
            {
                var cell = cells[i];
                var keep = ExecutionSpec.KeepsArtifact(sweep.ArtifactRetention, needed.Contains(c.CellKey));
                return (new CellWork(sweep.SweepId, c.CellKey, c.CellJson, c.Label, sweep.MaxAttempts, sweep.LeaseSeconds, sweep.Metrics,
                    sweep.RequiredDevice, cell?.QueuePackGroup, cell?.Needs, keep), c.Attempts, c.LastError);
            })
            .ToList();
        return _queue.Load(sweep.SweepId, sweep.CellCount, work, resetFailed);
    }

    private static Orchestrator.Core.Cells.CellDefinition? Parse(string cellJson)
    {
        try
        {
            return Orchestrator.Core.Cells.CellDefinition.FromJson(cellJson);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            return null; // an unreadable cell fails on the worker with its own message
        }
    }

    private async Task FlushAttemptsAsync(CancellationToken ct)
    {
        var changed = _queue.TakeChangedAttempts();
        if (changed.Count == 0)
        {
            return;
        }

        try
        {
            await store.RecordAttemptsAsync(changed, ct);
        }
        catch (Exception ex)
        {
            // Attempt counts are advisory (they bound retries); the next flush writes the newer values.
            logger.LogWarning(ex, "Could not record attempt counts for {Count} cell(s); will retry", changed.Count);
            foreach (var (key, _) in changed)
            {
                _queue.MarkAttemptsChanged(key);
            }
        }
    }
}
