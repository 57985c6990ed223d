using Orleans.Concurrency;

namespace Orchestrator.Abstractions;

/// <summary>One sweep (key: the sweep id). Records it, skips cells whose results exist, queues the rest.</summary>
[Alias("orch.sweep")]
public interface ISweepGrain : IGrainWithStringKey
{
    [Alias("submit")]
    Task<SubmitResult> SubmitAsync(SweepSubmission submission);

    [Alias("progress")]
    Task<SweepProgress> GetProgressAsync();

    /// <summary>Adds cells to an existing sweep (same id). Refused unless every existing cell is kept unchanged.</summary>
    [Alias("extend")]
    Task<SubmitResult> ExtendAsync(SweepSubmission submission);

    /// <summary>Stops the sweep: pending cells leave the queue, running ones are told to stop at their next renewal.</summary>
    [Alias("cancel")]
    Task CancelAsync();

    /// <summary>Re-queues every cell without a result from the database (also un-cancels). Returns how many were queued.</summary>
    [Alias("resume")]
    Task<int> ResumeAsync();

    /// <summary>Gives failed cells a fresh set of attempts and queues them. Returns how many.</summary>
    [Alias("rerun-failed")]
    Task<int> RerunFailedAsync();

    [Alias("cells")]
    Task<IReadOnlyList<CellState>> GetCellsAsync();

    /// <summary>
    /// With <c>selection:</c>, makes every choice whose selection cells have finished and queues the chosen candidates' grids (a
    /// restarted queue asks each active sweep); nothing to do otherwise.
    /// </summary>
    [Alias("advance-selection"), OneWay]
    Task AdvanceSelectionAsync();
}

/// <summary>
/// The pull queue (key: queue name, <see cref="DefaultName"/> unless sharded). Workers lease cells with a
/// time limit and renew while training; an expired lease puts the cell back with attempt + 1.
/// </summary>
[Alias("orch.trial-queue")]
public interface ITrialQueueGrain : IGrainWithStringKey
{
    public const string DefaultName = "default";

    [Alias("enqueue")]
    Task<int> EnqueueAsync(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone);

    /// <summary>
    /// Leases the next pending cell for the cell's own lease time (its spec's <c>execution.lease_seconds</c>), or null. The
    /// attempt is counted in the database before the lease is returned. A request repeated with the same
    /// <see cref="WorkerCapabilities.RequestId"/> returns the same lease.
    /// </summary>
    [Alias("lease")]
    Task<CellLease?> LeaseAsync(WorkerCapabilities worker);

    /// <summary>Extends a lease by its cell's lease time; false when the lease is no longer current (stop work).</summary>
    [Alias("renew")]
    Task<bool> RenewAsync(string leaseId);

    /// <summary>
    /// Ends a lease with what the database now holds for the cell (<see cref="CellCompletion"/>). A success is accepted
    /// even from a lease that expired; a failure from a lease that is no longer current is ignored.
    /// </summary>
    [Alias("complete")]
    Task<bool> CompleteAsync(CellCompletion completion);

    /// <summary>
    /// Gives a lease back without charging its attempt (a worker stopping gracefully): the cell goes back to the front of the
    /// queue, and its attempt limit rises by one in the database before this returns. False when the lease was not current.
    /// </summary>
    [Alias("release")]
    Task<bool> ReleaseAsync(string leaseId);

    /// <summary><see cref="ReleaseAsync"/> for several leases (a worker's at shutdown); returns how many were current.</summary>
    [Alias("release-many")]
    Task<int> ReleaseManyAsync(IReadOnlyList<string> leaseIds);

    [Alias("sweep-progress")]
    Task<SweepProgress> GetProgressAsync(string sweepId);

    [Alias("sweep-cells")]
    Task<IReadOnlyList<CellState>> GetCellsAsync(string sweepId);

    /// <summary>Drops the sweep's pending cells; its leased cells lose their lease at the next renewal.</summary>
    [Alias("cancel-sweep")]
    Task CancelSweepAsync(string sweepId);

    /// <summary>Rebuilds the sweep's queue entries from the database (cells without a successful result).</summary>
    [Alias("reload-sweep")]
    Task<int> ReloadSweepAsync(string sweepId, bool resetFailed);
}

/// <summary>
/// A sweep's results (key: the sweep id): the per-point aggregate computed by the database, cached and refreshed when
/// results arrive (the grain re-queries when the sweep's results fingerprint — count, attempt sum, last finish time — has
/// changed, checked at most once a second), and paired comparisons.
/// </summary>
[Alias("orch.results")]
public interface IResultsGrain : IGrainWithStringKey
{
    /// <summary>Every metric at every point (n = 0 where nothing finished yet).</summary>
    [Alias("get")]
    Task<SweepResults> GetAsync();

    /// <summary>Pairs of cells for <paramref name="metric"/>: two methods (<paramref name="by"/> = <c>method</c>) or two splits (<c>split</c>).</summary>
    [Alias("pairs")]
    Task<SweepPairs> GetPairsAsync(string metric, string by, string a, string b);

    /// <summary>Drops the cache (after metric values changed without a new result, e.g. <c>rescore</c>).</summary>
    [Alias("invalidate")]
    Task InvalidateAsync();
}
