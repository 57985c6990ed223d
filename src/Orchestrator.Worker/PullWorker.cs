using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.Training;
using Polly;

namespace Orchestrator.Worker;

/// <summary>
/// The pull loop of a worker: each slot leases a cell, trains it on a dedicated thread (never on the Orleans
/// scheduler) while a heartbeat renews the lease, upserts the result keyed by the cell, then completes the
/// lease. A lost lease cancels the training; a failure is recorded with its reason and the cell is retried
/// by the queue up to its attempt limit. Cluster calls go through <see cref="GrainCalls"/> (retry + timeout),
/// so a coordinator restart or a dead silo only pauses the loop.
/// </summary>
public sealed class PullWorker(
    IGrainFactory grains,
    IResultStore store,
    ICellRunner runner,
    IOptions<WorkerOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<PullWorker> logger) : BackgroundService
{
    private readonly WorkerOptions _options = options.Value;
    private readonly ResiliencePipeline _calls = GrainCalls.Create(logger, int.MaxValue, options.Value.CallTimeout, TimeSpan.FromSeconds(2));
    private int _busy;

    /// <summary>Raised when a slot finishes a cell (for progress displays).</summary>
    public event Action<CellLease, bool>? CellFinished;

    private bool Simulated => _options.SimulateCellSeconds is not null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _options.Validate();

        // Start pulling once the host (and its silo) has started, not while the silo is still joining.
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled()))
        {
            try
            {
                await started.Task;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        if (!Simulated)
        {
            var threads = Math.Max(1, Environment.ProcessorCount / _options.Slots);
            await Task.Run(() => TorchRuntime.EnsureAvailable(threads), stoppingToken);
        }

        logger.LogInformation("Worker {WorkerId}: {Slots} slot(s), {Device}", _options.WorkerId, _options.Slots, Device());
        await Task.WhenAll(Enumerable.Range(0, _options.Slots).Select(slot => SlotLoopAsync(slot, stoppingToken)));
    }

    private string Device() => Simulated ? "simulated" : TorchRuntime.IsInitialized ? TorchRuntime.Describe() : _options.DeviceKind;

    private Task<T> CallAsync<T>(Func<Task<T>> call, CancellationToken ct) =>
        _calls.ExecuteAsync(async token => await call().WaitAsync(token), ct).AsTask();

    private async Task SlotLoopAsync(int slot, CancellationToken stoppingToken)
    {
        ITrialQueueGrain? queue = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            CellLease? lease;
            try
            {
                // On a worker silo the queue grain's type is known only from the cluster manifest, i.e. once a
                // coordinator has joined; until then GetGrain throws and the slot waits.
                queue ??= grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
                var free = _options.Slots - Volatile.Read(ref _busy);
                var capabilities = new WorkerCapabilities(_options.WorkerId, _options.DeviceKind, _options.DeviceCount, Environment.WorkingSet, Math.Max(1, free));
                lease = await CallAsync(() => queue.LeaseAsync(capabilities), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (ArgumentException ex) when (queue is null)
            {
                logger.LogInformation("Slot {Slot}: no coordinator in the cluster yet ({Reason}); waiting", slot, ex.Message);
                await Delay(TimeSpan.FromSeconds(1), stoppingToken);
                continue;
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Slot {Slot}: lease request failed; retrying", slot);
                await Delay(_options.PollInterval * 4, stoppingToken);
                continue;
            }

            if (lease is null)
            {
                await Delay(_options.PollInterval, stoppingToken);
                continue;
            }

            Interlocked.Increment(ref _busy);
            try
            {
                await RunLeaseAsync(queue, lease, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The result could not be stored or the lease not completed: the lease expires and the cell is retried.
                logger.LogError(ex, "Slot {Slot}: cell {Label} could not be finished; its lease will expire", slot, lease.Work.Label);
            }
            finally
            {
                Interlocked.Decrement(ref _busy);
            }
        }
    }

    private async Task RunLeaseAsync(ITrialQueueGrain queue, CellLease lease, CancellationToken stoppingToken)
    {
        var work = lease.Work;
        CellResultRecord? result = null;

        // A cell leased again (attempt > 1: a lease expired, or the coordinator restarted) may already have a result
        // stored by the worker that held it: then it is completed without training it again.
        var done = lease.Attempt > 1 && (await store.GetSucceededKeysAsync([work.CellKey], stoppingToken)).Count > 0;
        if (!done)
        {
            using var lost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var heartbeat = HeartbeatAsync(queue, lease, lost);
            try
            {
                var cell = CellDefinition.FromJson(work.CellJson);
                var outcome = await RunOnDedicatedThread(() => runner.Run(cell, work.Metrics, _options.WorkerId, lease.Attempt, lost.Token));
                result = new CellResultRecord(work.CellKey, lease.Attempt, CellStatus.Succeeded, outcome.Metrics, null, _options.WorkerId,
                    Device(), outcome.WallSeconds, outcome.PeakMemoryBytes, outcome.ProvenanceJson, outcome.Outputs, DateTimeOffset.UtcNow);
            }
            catch (OperationCanceledException) when (lost.IsCancellationRequested)
            {
                logger.LogWarning("Cell {Label} ({Key}) attempt {Attempt}: stopped ({Reason})", work.Label, work.CellKey[..12], lease.Attempt,
                    stoppingToken.IsCancellationRequested ? "worker stopping" : "lease lost or sweep cancelled");
                await lost.CancelAsync();
                await heartbeat;
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Cell {Label} ({Key}) attempt {Attempt} failed", work.Label, work.CellKey[..12], lease.Attempt);
                result = new CellResultRecord(work.CellKey, lease.Attempt, CellStatus.Failed, new Dictionary<string, double>(), Describe(ex),
                    _options.WorkerId, Device(), 0, 0, "{}", [], DateTimeOffset.UtcNow);
            }

            await lost.CancelAsync();
            await heartbeat;
        }

        // Never cancelled: a computed result is not thrown away because the worker is stopping.
        var written = result is not null && await store.UpsertResultAsync(result, CancellationToken.None);
        var succeeded = result is null || result.Status == CellStatus.Succeeded;
        var accepted = await CallAsync(() => queue.CompleteAsync(new CellCompletion(lease.LeaseId, succeeded, result?.Error)), stoppingToken);
        logger.LogInformation("Cell {Label} ({Key}) attempt {Attempt}: {Status}{Written}{Accepted}", work.Label, work.CellKey[..12], lease.Attempt,
            result?.Status ?? "already done", result is null || written ? "" : " (a newer result exists; not written)",
            accepted ? "" : " (lease no longer current)");
        CellFinished?.Invoke(lease, succeeded);
    }

    private async Task HeartbeatAsync(ITrialQueueGrain queue, CellLease lease, CancellationTokenSource lost)
    {
        var period = TimeSpan.FromSeconds(Math.Max(0.5, lease.Work.LeaseSeconds / 3.0));
        try
        {
            while (!lost.IsCancellationRequested)
            {
                await Task.Delay(period, lost.Token);
                bool renewed;
                try
                {
                    renewed = await CallAsync(() => queue.RenewAsync(lease.LeaseId), lost.Token);
                }
                catch (Exception ex) when (!lost.IsCancellationRequested)
                {
                    logger.LogWarning(ex, "Lease renewal for {Label} failed; will retry", lease.Work.Label);
                    continue;
                }

                if (!renewed)
                {
                    logger.LogWarning("Lease for {Label} is no longer current; stopping its training", lease.Work.Label);
                    await lost.CancelAsync();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static Task<T> RunOnDedicatedThread<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static async Task Delay(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, ct);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The reason and the tail of the stack: enough to act on, small enough to store.</summary>
    private static string Describe(Exception ex)
    {
        var sb = new StringBuilder();
        for (var e = ex; e is not null; e = e.InnerException)
        {
            sb.Append(e.GetType().Name).Append(": ").Append(e.Message).Append('\n');
        }

        var stack = ex.StackTrace ?? "";
        sb.Append(stack.Length > 2000 ? stack[^2000..] : stack);
        return sb.ToString();
    }
}
