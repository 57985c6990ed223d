using Orchestrator.Abstractions;

namespace Orchestrator.Grains;

/// <summary>Orleans face of <see cref="TrialQueue"/>. State is a cache: the results database is the truth.</summary>
public sealed class TrialQueueGrain(TimeProvider clock) : Grain, ITrialQueueGrain
{
    private readonly TrialQueue _queue = new(clock);

    public Task<int> EnqueueAsync(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone) =>
        Task.FromResult(_queue.Enqueue(sweepId, cells, alreadyDone));

    public Task<CellLease?> LeaseAsync(WorkerCapabilities worker) =>
        Task.FromResult(worker.FreeSlots > 0 ? _queue.Lease(worker) : null);

    public Task<bool> RenewAsync(string leaseId) => Task.FromResult(_queue.Renew(leaseId));

    public Task<bool> CompleteAsync(CellCompletion completion) => Task.FromResult(_queue.Complete(completion));

    public Task<SweepProgress> GetProgressAsync(string sweepId) => Task.FromResult(_queue.Progress(sweepId));
}
