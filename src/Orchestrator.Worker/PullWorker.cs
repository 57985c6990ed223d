using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.Training;

namespace Orchestrator.Worker;

/// <summary>
/// The pull loop of a worker: each slot leases a cell, trains it on a dedicated thread (never on the Orleans
/// scheduler) while a heartbeat renews the lease, upserts the result keyed by the cell, then completes the
/// lease. A lost lease cancels the training; a failure is recorded with its reason and the cell is retried
/// by the queue up to its attempt limit.
/// </summary>
public sealed class PullWorker(
    IGrainFactory grains,
    IResultStore store,
    CellRunner runner,
    IOptions<WorkerOptions> options,
    ILogger<PullWorker> logger) : BackgroundService
{
    private readonly WorkerOptions _options = options.Value;
    private int _busy;

    /// <summary>Raised when a slot finishes a cell (for progress displays).</summary>
    public event Action<CellLease, bool>? CellFinished;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _options.Validate();
        var threads = Math.Max(1, Environment.ProcessorCount / _options.Slots);
        await Task.Run(() => TorchRuntime.EnsureAvailable(threads), stoppingToken);
        logger.LogInformation("Worker {WorkerId}: {Slots} slot(s), {Device}", _options.WorkerId, _options.Slots, TorchRuntime.Describe());
        await Task.WhenAll(Enumerable.Range(0, _options.Slots).Select(slot => SlotLoopAsync(slot, stoppingToken)));
    }

    private async Task SlotLoopAsync(int slot, CancellationToken stoppingToken)
    {
        var queue = grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
        while (!stoppingToken.IsCancellationRequested)
        {
            CellLease? lease;
            try
            {
                var free = _options.Slots - Volatile.Read(ref _busy);
                lease = await queue.LeaseAsync(new WorkerCapabilities(_options.WorkerId, _options.DeviceKind, 0, 0, Math.Max(1, free)));
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
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
            finally
            {
                Interlocked.Decrement(ref _busy);
            }
        }
    }

    private async Task RunLeaseAsync(ITrialQueueGrain queue, CellLease lease, CancellationToken stoppingToken)
    {
        var work = lease.Work;
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var heartbeat = HeartbeatAsync(queue, lease, lost);
        CellResultRecord result;
        try
        {
            var cell = CellDefinition.FromJson(work.CellJson);
            var outcome = await RunOnDedicatedThread(() => runner.Run(cell, work.Metrics, _options.WorkerId, lease.Attempt, null, lost.Token));
            result = new CellResultRecord(work.CellKey, lease.Attempt, "succeeded", outcome.Metrics, null, _options.WorkerId,
                TorchRuntime.Describe(), outcome.WallSeconds, outcome.PeakMemoryBytes, outcome.ProvenanceJson, outcome.Outputs, DateTimeOffset.UtcNow);
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested)
        {
            logger.LogWarning("Cell {Label} ({Key}) attempt {Attempt}: stopped ({Reason})", work.Label, work.CellKey[..12], lease.Attempt,
                stoppingToken.IsCancellationRequested ? "worker stopping" : "lease lost");
            lost.Cancel();
            await heartbeat;
            return;
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Cell {Label} ({Key}) attempt {Attempt} failed", work.Label, work.CellKey[..12], lease.Attempt);
            result = new CellResultRecord(work.CellKey, lease.Attempt, "failed", new Dictionary<string, double>(), Describe(ex), _options.WorkerId,
                TorchRuntime.IsInitialized ? TorchRuntime.Describe() : "unavailable", 0, 0, "{}", [], DateTimeOffset.UtcNow);
        }

        lost.Cancel();
        await heartbeat;
        var written = await store.UpsertResultAsync(result, CancellationToken.None);
        var accepted = await queue.CompleteAsync(new CellCompletion(lease.LeaseId, result.Status == "succeeded", result.Error));
        logger.LogInformation("Cell {Label} ({Key}) attempt {Attempt}: {Status}{Written}{Accepted}", work.Label, work.CellKey[..12], lease.Attempt,
            result.Status, written ? "" : " (a newer result exists; not written)", accepted ? "" : " (lease no longer current)");
        CellFinished?.Invoke(lease, result.Status == "succeeded");
    }

    private async Task HeartbeatAsync(ITrialQueueGrain queue, CellLease lease, CancellationTokenSource lost)
    {
        var period = TimeSpan.FromSeconds(Math.Max(1, lease.Work.LeaseSeconds / 3.0));
        try
        {
            while (!lost.IsCancellationRequested)
            {
                await Task.Delay(period, lost.Token);
                bool renewed;
                try
                {
                    renewed = await queue.RenewAsync(lease.LeaseId);
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
        sb.Append(stack.Length > 2000 ? stack[..2000] : stack);
        return sb.ToString();
    }
}
