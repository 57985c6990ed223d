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
    /// <summary>Runs blocking work (training) on a thread of its own, never on the Orleans scheduler or the thread pool.</summary>
    public static Task<T> RunOnDedicatedThread<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

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
}
