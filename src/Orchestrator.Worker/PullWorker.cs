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
/// scheduler) while its <see cref="HeldLease"/> renews the lease, stores the result keyed by the cell
/// (<see cref="ResultReporter"/>), then completes the lease. A lost lease cancels the training; a failure is recorded
/// with its reason and the cell is retried by the queue up to its attempt limit. Queue calls retry on transient faults
/// (<see cref="QueueCalls"/>), so a coordinator restart or a dead silo only pauses the loop.
/// <para>
/// Packing (<see cref="WorkerOptions.PackSize"/>): a slot whose cell's method packs trains it in a <see cref="PackRun"/>,
/// which leases more cells of the same pack group while it trains, up to K at once on one shared base.
/// Staged sweeps: <see cref="ArtifactStaging"/> supplies the trained methods a cell needs and stores the one it keeps.
/// </para>
/// </summary>
public sealed class PullWorker : BackgroundService
{
    private readonly IGrainFactory _grains;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly WorkerOptions _options;
    private readonly WorkerParts _parts;
    private int _busy;

    public PullWorker(
        IGrainFactory grains,
        IResultStore store,
        ICellRunner runner,
        IOptions<WorkerOptions> options,
        IHostApplicationLifetime lifetime,
        ILogger<PullWorker> logger)
    {
        _grains = grains;
        _lifetime = lifetime;
        _options = options.Value;
        var calls = new QueueCalls(logger, _options.CallTimeout);
        var reporter = new ResultReporter(store, calls, _options.WorkerId, Device, logger);
        reporter.CellFinished += (lease, succeeded) => CellFinished?.Invoke(lease, succeeded);
        _parts = new WorkerParts(_options, runner, store, calls, new ArtifactStaging(store, _options.ResolvedArtifactDirectory, logger), reporter, logger);
    }

    /// <summary>Raised when a slot finishes a cell (for progress displays).</summary>
    public event Action<CellLease, bool>? CellFinished;

    private bool Simulated => _options.SimulateCellSeconds is not null;

    private ILogger Logger => _parts.Logger;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _options.Validate();

        // Start pulling once the host (and its silo) has started, not while the silo is still joining.
        var started = new TaskCompletionSource();
        using (_lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
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
            // ProcessorCount honours the process's CPU affinity and cgroup limits: the cores this worker can really use.
            var threads = _options.EffectiveThreads(Environment.ProcessorCount);
            if (_options.ThreadsWarning(Environment.ProcessorCount) is { } warning) Logger.LogWarning("{Warning}", warning);
            await Task.Run(() => TorchRuntime.EnsureAvailable(threads), stoppingToken);
        }

        Logger.LogInformation("Worker {WorkerId}: {Slots} slot(s), {Device}", _options.WorkerId, _options.Slots, Device());
        await Task.WhenAll(Enumerable.Range(0, _options.Slots).Select(slot => SlotLoopAsync(slot, stoppingToken)));
    }

    private string Device() => Simulated ? "simulated" : TorchRuntime.IsInitialized ? TorchRuntime.Describe() : _options.DeviceKind;

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
                queue ??= _grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
                var free = _options.Slots - Volatile.Read(ref _busy);
                var capabilities = new WorkerCapabilities(_options.WorkerId, _options.DeviceKind, _options.DeviceCount, Environment.WorkingSet, Math.Max(1, free),
                    RequestId: Guid.NewGuid().ToString("N")); // one id for every retry of this request
                lease = await _parts.Calls.CallAsync(() => queue.LeaseAsync(capabilities), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (ArgumentException ex) when (queue is null)
            {
                Logger.LogInformation("Slot {Slot}: no coordinator in the cluster yet ({Reason}); waiting", slot, ex.Message);
                await Delay(TimeSpan.FromSeconds(1), stoppingToken);
                continue;
            }
            catch (Exception ex)
            {
                Logger.LogWarning(ex, "Slot {Slot}: lease request failed; retrying", slot);
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
                if (PackCell(lease) is { } cell)
                {
                    await new PackRun(_parts, queue, stoppingToken, stoppingToken).RunAsync(lease, cell);
                }
                else
                {
                    await RunCellAsync(queue, lease, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The result could not be stored or the lease not completed: the lease expires and the cell is retried.
                Logger.LogError(ex, "Slot {Slot}: cell {Label} could not be finished; its lease will expire", slot, lease.Work.Label);
            }
            finally
            {
                Interlocked.Decrement(ref _busy);
            }
        }
    }

    /// <summary>The cell, when packing is on and its method packs; otherwise null (trained alone).</summary>
    private CellDefinition? PackCell(CellLease lease)
    {
        if (_options.PackSize == 1 || Simulated || lease.Work.PackGroup is null || lease.Work.Dependencies.Count > 0)
        {
            return null;
        }

        try
        {
            var cell = CellDefinition.FromJson(lease.Work.CellJson);
            return _parts.Runner.CanPack(cell) ? cell : null;
        }
        catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException)
        {
            return null; // trained alone, where the error is reported
        }
    }

    /// <summary>Trains one cell alone (unless a result of it is already stored) and reports its result.</summary>
    private async Task RunCellAsync(ITrialQueueGrain queue, CellLease lease, CancellationToken stoppingToken)
    {
        var reporter = _parts.Reporter;
        if (await _parts.AlreadySucceededAsync(lease, stoppingToken))
        {
            await reporter.FinishAsync(queue, null, lease, null, stoppingToken);
            return;
        }

        await using var held = new HeldLease(queue, lease, _parts.Calls, Logger, stoppingToken);
        CellResultRecord result;
        TrialArtifacts? artifacts = null;
        try
        {
            var cell = CellDefinition.FromJson(lease.Work.CellJson);
            artifacts = await _parts.Artifacts.PrepareAsync(lease.Work, held.Token);
            var outcome = await WorkerParts.RunOnDedicatedThread(() =>
                _parts.Runner.Run(cell, lease.Work.Metrics, _options.WorkerId, lease.Attempt, held.Token, artifacts));
            if (artifacts?.SaveTo is { } staged)
            {
                await _parts.Artifacts.StoreAsync(lease.Work, staged);
            }

            result = reporter.Succeeded(lease, outcome);
        }
        catch (OperationCanceledException) when (held.Token.IsCancellationRequested)
        {
            reporter.LogStopped(lease, stoppingToken.IsCancellationRequested);
            return;
        }
        catch (Exception ex)
        {
            result = reporter.Failed(lease, ex);
        }
        finally
        {
            ArtifactStaging.Discard(artifacts?.SaveTo);
        }

        await reporter.FinishAsync(queue, held, lease, result, stoppingToken);
    }

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
}
