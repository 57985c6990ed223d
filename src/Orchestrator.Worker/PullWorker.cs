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
/// <para>
/// Graceful stop (SIGTERM, host shutdown): before any part of the host stops, the worker stops leasing, lets running cells
/// finish for up to <see cref="WorkerOptions.DrainSeconds"/>, then stops the rest and releases their leases (no attempt is
/// charged), so a rolling update or a scale-down never fails a cell.
/// </para>
/// </summary>
public sealed class PullWorker : BackgroundService, IHostedLifecycleService
{
    private readonly IGrainFactory _grains;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly WorkerOptions _options;
    private readonly WorkerParts _parts;
    private readonly CancellationTokenSource _stopLeasing = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly CancellationTokenSource _hardStop = new();
    private readonly TaskCompletionSource _slotsDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ITrialQueueGrain? _queue;
    private int _busy;
    private int _slots = 1;

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
        var runs = new TrainingRunRecorder(store, _options.WorkerId, logger);
        var reporter = new ResultReporter(store, calls, new ResultSpool(_options.ResolvedSpoolDirectory), runs, _options, Device, logger);
        reporter.CellFinished += (lease, succeeded) => CellFinished?.Invoke(lease, succeeded);
        _parts = new WorkerParts(_options, runner, store, calls, new ArtifactStaging(store, _options.ResolvedArtifactDirectory, logger), reporter, logger);
    }

    /// <summary>Raised when a slot finishes a cell (for progress displays).</summary>
    public event Action<CellLease, bool>? CellFinished;

    private bool Simulated => _options.SimulateCellSeconds is not null;

    private ILogger Logger => _parts.Logger;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunSlotsAsync(stoppingToken);
        }
        finally
        {
            _slotsDone.TrySetResult();
        }
    }

    private async Task RunSlotsAsync(CancellationToken stoppingToken)
    {
        _options.Validate();
        // Without a graceful stop first (StoppingAsync), the host's stop ends everything at once.
        using var stop = stoppingToken.Register(() =>
        {
            _stopLeasing.Cancel();
            _abort.Cancel();
            _hardStop.Cancel();
        });

        // Start pulling once the host (and its silo) has started, not while the silo is still joining.
        var started = new TaskCompletionSource();
        using (_lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (_stopLeasing.Token.Register(() => started.TrySetCanceled()))
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

        // ProcessorCount honours the process's CPU affinity and cgroup limits: the cores this worker can really use.
        _slots = _options.EffectiveSlots(Environment.ProcessorCount);
        if (!Simulated)
        {
            if (_options.ThreadsWarning(Environment.ProcessorCount) is { } warning) Logger.LogWarning("{Warning}", warning);
            await Task.Run(() => TorchRuntime.EnsureAvailable(_options.EffectiveThreads()), CancellationToken.None);
        }

        Logger.LogInformation("Worker {WorkerId}: {Slots} slot(s) × {Threads} torch thread(s), {Device}", _options.WorkerId, _slots,
            _options.EffectiveThreads(), Device());
        if (_options.PackSize != 1 && !_options.Packs())
        {
            Logger.LogInformation("Worker {WorkerId}: packing is off on {Threads} torch threads per cell (a cell would round differently in a pack than alone); cells train one at a time",
                _options.WorkerId, _options.EffectiveThreads());
        }

        // Results an earlier run on this spool computed but could not write go first (in the background: the database may still be down).
        var upload = _parts.Reporter.UploadSpooledAsync(QueueOrNull, _hardStop.Token);
        await Task.WhenAll(Enumerable.Range(0, _slots).Select(SlotLoopAsync));
        await upload;
    }

    /// <summary>
    /// The graceful stop, run by the host before it stops any service (the silo still serves calls): no new leases, running
    /// cells get <see cref="WorkerOptions.DrainSeconds"/> to finish, then the rest stop and release their leases.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await _stopLeasing.CancelAsync();
        var drain = TimeSpan.FromSeconds(_options.DrainSeconds);
        if (drain > TimeSpan.Zero && Volatile.Read(ref _busy) > 0)
        {
            Logger.LogInformation("Worker {WorkerId} stopping: letting {Busy} running cell(s) finish for up to {Drain}", _options.WorkerId,
                Volatile.Read(ref _busy), drain);
            var deadline = DateTime.UtcNow + drain;
            while (Volatile.Read(ref _busy) > 0 && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
            {
                await Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }
        }

        if (Volatile.Read(ref _busy) > 0)
        {
            Logger.LogInformation("Worker {WorkerId} stopping: stopping {Busy} running cell(s) and releasing their leases", _options.WorkerId,
                Volatile.Read(ref _busy));
        }

        await _abort.CancelAsync();
        try
        {
            await _slotsDone.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Logger.LogWarning("Worker {WorkerId}: the host's shutdown timeout ran out before every lease was released", _options.WorkerId);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Dispose()
    {
        base.Dispose(); // cancels the stopping token first, whose callback uses the sources below
        _stopLeasing.Dispose();
        _abort.Dispose();
        _hardStop.Dispose();
    }

    private ITrialQueueGrain? QueueOrNull()
    {
        try
        {
            return _queue ??= _grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
        }
        catch (ArgumentException)
        {
            return null; // no coordinator has joined yet
        }
    }

    private string Device() => Simulated ? "simulated" : TorchRuntime.IsInitialized ? TorchRuntime.Describe() : _options.DeviceKind;

    private async Task SlotLoopAsync(int slot)
    {
        var stoppingToken = _stopLeasing.Token;
        ITrialQueueGrain? queue = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            CellLease? lease;
            try
            {
                // On a worker silo the queue grain's type is known only from the cluster manifest, i.e. once a
                // coordinator has joined; until then GetGrain throws and the slot waits.
                queue ??= _grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
                var free = _slots - Volatile.Read(ref _busy);
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
                    await new PackRun(_parts, queue, _stopLeasing.Token, _abort.Token, _hardStop.Token).RunAsync(lease, cell);
                }
                else
                {
                    await RunCellAsync(queue, lease);
                }
            }
            catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
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
        if (!_options.Packs() || Simulated || lease.Work.PackGroup is null || lease.Work.Dependencies.Count > 0)
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
    private async Task RunCellAsync(ITrialQueueGrain queue, CellLease lease)
    {
        var reporter = _parts.Reporter;
        if (await _parts.AlreadySucceededAsync(lease, _hardStop.Token))
        {
            await reporter.FinishAsync(queue, null, lease, null, null, _hardStop.Token);
            return;
        }

        await using var held = new HeldLease(queue, lease, _parts.Calls, Logger, _abort.Token);
        CellResultRecord result;
        TrialArtifacts? artifacts = null;
        string? runId = null;
        try
        {
            var cell = CellDefinition.FromJson(lease.Work.CellJson);
            artifacts = await _parts.Artifacts.PrepareAsync(lease.Work, RetrainSourceAsync, held.Token);
            runId = await reporter.Runs.StartAsync(lease);
            var outcome = await _parts.OnTrainingThread(() =>
                _parts.Runner.Run(cell, lease.Work.Metrics, _options.WorkerId, lease.Attempt, held.Token, artifacts));
            if (artifacts?.SaveTo is { } staged)
            {
                await _parts.Artifacts.StoreAsync(lease.Work, staged);
            }

            result = reporter.Succeeded(lease, outcome);
        }
        catch (OperationCanceledException) when (held.Token.IsCancellationRequested)
        {
            reporter.LogStopped(lease, _abort.IsCancellationRequested);
            await reporter.Runs.FinishAsync(runId, TrainingRunOutcome.Stopped);
            await _parts.ReleaseAsync(queue, held, _abort.Token, _hardStop.Token);
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

        await reporter.FinishAsync(queue, held, lease, result, runId, _hardStop.Token);
    }

    /// <summary>
    /// Trains an earlier-stage cell again because the artifact a later cell needs from it is missing or corrupt, and stores and
    /// indexes the rebuilt artifact. The source's stored result is left as it is (its first success stands); the training is
    /// recorded as a run of the source cell with attempt 0.
    /// </summary>
    private async Task<ArtifactRecord> RetrainSourceAsync(CellDescriptor source, CellWork dependant, CancellationToken ct)
    {
        var cell = CellDefinition.FromJson(source.CellJson);
        var work = new CellWork(dependant.SweepId, source.CellKey, source.CellJson, cell.Label, 1, dependant.LeaseSeconds, dependant.Metrics,
            Needs: cell.Dependencies, KeepArtifact: true);
        var artifacts = await _parts.Artifacts.PrepareAsync(work, RetrainSourceAsync, ct);
        var started = _parts.Reporter.Runs.Begin(source.CellKey, 0, cell.Label);
        await started.Recorded;
        var run = started.RunId;
        try
        {
            await _parts.OnTrainingThread(() => _parts.Runner.Run(cell, work.Metrics, _options.WorkerId, 0, ct, artifacts));
            var stored = await _parts.Artifacts.StoreAsync(work, artifacts!.SaveTo!);
            await _parts.Reporter.Runs.FinishAsync(run, TrainingRunOutcome.Succeeded);
            return stored;
        }
        catch (Exception ex)
        {
            await _parts.Reporter.Runs.FinishAsync(run, ex is OperationCanceledException ? TrainingRunOutcome.Stopped : TrainingRunOutcome.Failed);
            throw;
        }
        finally
        {
            ArtifactStaging.Discard(artifacts?.SaveTo);
        }
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
