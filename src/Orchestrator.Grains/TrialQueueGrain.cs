using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orleans.Concurrency;
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
/// Orleans face of <see cref="TrialQueue"/>. Its state is a cache of the database: on activation (first use, or after the
/// coordinator restarted) it rebuilds every active sweep from the cells that have no successful result. Every lease's
/// attempt is counted in the database before the lease is handed out, and every budget change (a rerun, a resubmission, a
/// released lease) is written before the call returns, so nothing the queue decides is lost with it.
/// <para>
/// Reentrant: a call waiting on the database (a lease's count, a reload's reads) does not hold up renewals and completions.
/// Each <see cref="TrialQueue"/> step runs without an await inside it, and steps that span an await re-check their state
/// afterwards (a claimed cell cannot be leased twice or expire; a cancelled claim is not granted).
/// </para>
/// </summary>
[Reentrant]
public sealed class TrialQueueGrain(IResultStore store, TimeProvider clock, ILogger<TrialQueueGrain> logger, IServiceProvider services) : Grain, ITrialQueueGrain
{
    /// <summary>How many recent lease request ids are remembered (a retry comes within a few call timeouts).</summary>
    private const int RememberedRequests = 4096;

    private readonly QueueRestore _restore = (QueueRestore?)services.GetService(typeof(QueueRestore)) ?? QueueRestore.Restore;
    private readonly TrialQueue _queue = new(clock);
    private readonly Dictionary<string, Task<CellLease?>> _requests = new(StringComparer.Ordinal);
    private readonly Queue<string> _requestOrder = new();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var sweeps = _restore.ActiveSweeps ? await store.GetSweepsAsync(SweepStatus.Active, cancellationToken) : [];
        var pending = 0;
        foreach (var sweep in sweeps)
        {
            var unfinished = await store.GetUnfinishedCellsAsync(sweep.SweepId, cancellationToken);
            pending += Load(sweep, unfinished, budgets: null);
        }

        // A sweep whose grid waits for a choice carries on without its client (one-way: the sweep calls back into this queue).
        foreach (var sweep in sweeps)
        {
            GrainFactory.GetGrain<ISweepGrain>(sweep.SweepId).AdvanceSelectionAsync().Ignore();
        }

        logger.LogInformation("Queue {Queue} activated: {Sweeps} active sweep(s), {Pending} cell(s) pending", this.GetPrimaryKeyString(), sweeps.Count, pending);
    }

    public async Task<int> EnqueueAsync(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone)
    {
        // Every cell gets a fresh budget on top of the attempts it has had (in this or any earlier sweep).
        var budgets = new Dictionary<string, AttemptBudget>(StringComparer.Ordinal);
        foreach (var group in cells.GroupBy(c => c.MaxAttempts))
        {
            foreach (var (key, budget) in await store.GrantAttemptsAsync(group.Select(c => c.CellKey).ToList(), group.Key, includeExhausted: true))
            {
                budgets[key] = budget;
            }
        }

        return _queue.Enqueue(sweepId, cells, alreadyDone, budgets);
    }

    public Task<CellLease?> LeaseAsync(WorkerCapabilities worker)
    {
        if (worker.FreeSlots <= 0)
        {
            return Task.FromResult<CellLease?>(null);
        }

        if (worker.RequestId is not { } id)
        {
            return LeaseOnceAsync(worker);
        }

        if (_requests.TryGetValue(id, out var earlier) && !earlier.IsFaulted && !earlier.IsCanceled)
        {
            return earlier; // a retry: the same lease (or the same "nothing to do"), never a second one
        }

        var task = LeaseOnceAsync(worker);
        if (_requests.TryAdd(id, task))
        {
            _requestOrder.Enqueue(id);
            while (_requestOrder.Count > RememberedRequests)
            {
                _requests.Remove(_requestOrder.Dequeue());
            }
        }
        else
        {
            _requests[id] = task;
        }

        return task;
    }

    private async Task<CellLease?> LeaseOnceAsync(WorkerCapabilities worker)
    {
        while (_queue.Claim(worker) is { } claim)
        {
            int attempt;
            try
            {
                attempt = await store.BeginAttemptAsync(claim.CellKey, claim.Limit);
            }
            catch
            {
                _queue.Abandon(claim.LeaseId);
                throw;
            }

            if (_queue.Grant(claim.LeaseId, attempt) is { } lease)
            {
                return lease;
            }

            // Cancelled meanwhile, or over its limit (now failed): try the next cell.
        }

        return null;
    }

    public Task<bool> RenewAsync(string leaseId) => Task.FromResult(_queue.Renew(leaseId));

    public Task<bool> CompleteAsync(CellCompletion completion)
    {
        var work = _queue.LeasedWork(completion.LeaseId);
        var completed = _queue.Complete(completion);
        if (completed && work is not null && work.Label.StartsWith(Core.Specs.SweepSpec.SelectionStage + "/", StringComparison.Ordinal))
        {
            // A selection cell has ended: a choice may be due. Its sweep checks now (one-way: it calls back into this queue) rather
            // than at its next fallback tick.
            GrainFactory.GetGrain<ISweepGrain>(work.SweepId).AdvanceSelectionAsync().Ignore();
        }

        return Task.FromResult(completed);
    }

    public async Task<bool> ReleaseAsync(string leaseId)
    {
        if (_queue.ReleaseLease(leaseId) is not { } released)
        {
            return false;
        }

        // The next lease of the cell also writes this limit (BeginAttemptAsync keeps the higher one), should this write fail.
        await store.RaiseAttemptLimitAsync(released.CellKey, released.Limit);
        logger.LogInformation("Lease {Lease} of cell {Cell} released; its attempt is given back (limit {Limit})", leaseId, released.CellKey[..Math.Min(12, released.CellKey.Length)], released.Limit);
        return true;
    }

    public async Task<int> ReleaseManyAsync(IReadOnlyList<string> leaseIds)
    {
        var released = 0;
        foreach (var id in leaseIds)
        {
            released += await ReleaseAsync(id) ? 1 : 0;
        }

        return released;
    }

    public Task<SweepProgress> GetProgressAsync(string sweepId) => Task.FromResult(_queue.Progress(sweepId));

    public Task<IReadOnlyList<CellState>> GetCellsAsync(string sweepId) => Task.FromResult(_queue.Cells(sweepId));

    public Task CancelSweepAsync(string sweepId)
    {
        _queue.Cancel(sweepId);
        return Task.CompletedTask;
    }

    /// <summary>
    /// <c>resume</c> (<paramref name="resetFailed"/> false) and <c>rerun-failed</c> (true): the sweep's unfinished cells get a
    /// fresh budget on top of their counts (with <c>resume</c>, only those that have not used theirs up), then the queue
    /// takes them. The database is read and written before the queue changes, in one step.
    /// </summary>
    public async Task<int> ReloadSweepAsync(string sweepId, bool resetFailed)
    {
        var sweep = await store.FindSweepAsync(sweepId) ?? throw new ArgumentException($"no sweep '{sweepId}'");
        var unfinished = await store.GetUnfinishedCellsAsync(sweep.SweepId);
        var budgets = await store.GrantAttemptsAsync(unfinished.Select(c => c.CellKey).ToList(), sweep.MaxAttempts, includeExhausted: resetFailed);
        return Load(sweep, unfinished, budgets);
    }

    private int Load(SweepRecord sweep, IReadOnlyList<UnfinishedCell> unfinished, IReadOnlyDictionary<string, AttemptBudget>? budgets)
    {
        var cells = unfinished.Select(c => Parse(c.CellJson)).ToList();

        // The sweep's retention policy decides again which trained methods are kept: with `needed`, those that unfinished
        // cells of a later stage need.
        var needed = cells.SelectMany(c => c?.Dependencies ?? []).ToHashSet(StringComparer.Ordinal);
        var work = unfinished
            .Select((c, i) =>
            {
                var cell = cells[i];
                var keep = ExecutionSpec.KeepsArtifact(sweep.ArtifactRetention, needed.Contains(c.CellKey));
                var budget = budgets?.GetValueOrDefault(c.CellKey) is { } granted
                    ? granted with { Attempts = Math.Max(granted.Attempts, c.Attempts) }
                    : new AttemptBudget(c.Attempts, c.AttemptLimit);
                return (new CellWork(sweep.SweepId, c.CellKey, c.CellJson, c.Label, sweep.MaxAttempts, sweep.LeaseSeconds, sweep.Metrics,
                    sweep.RequiredDevice, cell?.QueuePackGroup, cell?.Needs, keep), budget, c.LastError);
            })
            .ToList();
        return _queue.Load(sweep.SweepId, sweep.CellCount, work);
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
}
