using Microsoft.Extensions.Logging;
using Orchestrator.Results;

namespace Orchestrator.Worker;

/// <summary>The pieces one worker's slots share: its settings, cell runner, results store, queue calls, artifacts and result reporting.</summary>
internal sealed record WorkerParts(
    WorkerOptions Options,
    ICellRunner Runner,
    IResultStore Store,
    QueueCalls Calls,
    ArtifactStaging Artifacts,
    ResultReporter Reporter,
    ILogger Logger)
{
    /// <summary>
    /// Runs blocking work (training) on a thread of its own, never on the Orleans scheduler or the thread pool. A real
    /// worker's thread is pinned to the worker's threads per cell first (libtorch keeps the count per thread), so a cell
    /// trains on the count recorded with its result whatever the other slots do.
    /// </summary>
    public Task<T> OnTrainingThread<T>(Func<T> work) =>
        Task.Factory.StartNew(() =>
        {
            if (Options.SimulateCellSeconds is null) Orchestrator.Training.TorchRuntime.PinCurrentThread(Options.EffectiveThreads());
            return work();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>True when <paramref name="lease"/>'s cell was leased again and a result of it is already stored (finish it without training).
    /// A failed look-up counts as not done: training again is safe, a stored success is never replaced by a failure.</summary>
    public async Task<bool> AlreadySucceededAsync(Orchestrator.Abstractions.CellLease lease, CancellationToken ct)
    {
        if (lease.Attempt <= 1)
        {
            return false;
        }

        try
        {
            return (await Store.GetSucceededKeysAsync([lease.Work.CellKey], ct)).Count > 0;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Logger.LogWarning(ex, "Could not check whether cell {Label} already has a result; training it", lease.Work.Label);
            return false;
        }
    }

    /// <summary>
    /// Ends a lease whose cell stopped before it finished. When the worker itself is stopping (<paramref name="abort"/>) and the
    /// lease is still current, it is released: the cell goes back to the queue without an attempt charged. Otherwise (the lease
    /// was lost, or its sweep cancelled) it is only no longer renewed.
    /// </summary>
    public async Task ReleaseAsync(Orchestrator.Abstractions.ITrialQueueGrain queue, HeldLease held, CancellationToken abort, CancellationToken hardStop)
    {
        await held.StopRenewingAsync();
        if (!abort.IsCancellationRequested || held.IsLost)
        {
            return;
        }

        try
        {
            var released = await Calls.CallAsync(() => queue.ReleaseAsync(held.Lease.LeaseId), hardStop);
            Logger.LogInformation("Cell {Label} ({Key}) attempt {Attempt}: lease {Released}", held.Work.Label, held.Work.CellKey[..12], held.Lease.Attempt,
                released ? "released (no attempt charged)" : "was no longer current");
        }
        catch (Exception ex)
        {
            Logger.LogWarning(ex, "Could not release the lease of {Label}; it runs out instead", held.Work.Label);
        }
    }
}
