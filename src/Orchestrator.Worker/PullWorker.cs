using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.Training;
using Orchestrator.Training.Peft;
using Polly;

namespace Orchestrator.Worker;

/// <summary>
/// The pull loop of a worker: each slot leases a cell, trains it on a dedicated thread (never on the Orleans
/// scheduler) while a heartbeat renews the lease, upserts the result keyed by the cell, then completes the
/// lease. A lost lease cancels the training; a failure is recorded with its reason and the cell is retried
/// by the queue up to its attempt limit. Cluster calls go through <see cref="GrainCalls"/> (retry + timeout),
/// so a coordinator restart or a dead silo only pauses the loop.
/// <para>
/// Packing (<see cref="WorkerOptions.PackSize"/>): a slot whose cell's method packs keeps leasing cells of the same pack
/// group while it trains, up to K at once on one shared base, each with its own lease, heartbeat and result.
/// </para>
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
    private ArtifactStore? _artifacts;

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
            var threads = _options.Threads > 0 ? _options.Threads : Math.Max(1, Environment.ProcessorCount / _options.Slots);
            await Task.Run(() => TorchRuntime.EnsureAvailable(threads), stoppingToken);
        }

        logger.LogInformation("Worker {WorkerId}: {Slots} slot(s), {Device}", _options.WorkerId, _options.Slots, Device());
        await Task.WhenAll(Enumerable.Range(0, _options.Slots).Select(slot => SlotLoopAsync(slot, stoppingToken)));
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
            return runner.CanPack(cell) ? cell : null;
        }
        catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException)
        {
            return null; // trained alone, where the error is reported
        }
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
                if (PackCell(lease) is { } cell)
                {
                    await RunPackAsync(queue, lease, cell, stoppingToken);
                }
                else
                {
                    await RunLeaseAsync(queue, lease, stoppingToken);
                }
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
            TrialArtifacts? artifacts = null;
            try
            {
                var cell = CellDefinition.FromJson(work.CellJson);
                artifacts = await ArtifactsForAsync(work, lost.Token);
                var outcome = await RunOnDedicatedThread(() => runner.Run(cell, work.Metrics, _options.WorkerId, lease.Attempt, lost.Token, artifacts));
                if (artifacts?.SaveTo is { } staged)
                {
                    await StoreArtifactAsync(work, staged);
                }

                result = Succeeded(lease, outcome);
            }
            catch (OperationCanceledException) when (lost.IsCancellationRequested)
            {
                LogStopped(lease, stoppingToken);
                await lost.CancelAsync();
                await heartbeat;
                return;
            }
            catch (Exception ex)
            {
                result = Failed(lease, ex);
            }
            finally
            {
                // A staging folder that was not moved into the store (the cell failed or stopped) is removed.
                if (artifacts?.SaveTo is { } staging && Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true);
                }
            }

            await lost.CancelAsync();
            await heartbeat;
        }

        await FinishLeaseAsync(queue, lease, result, stoppingToken);
    }

    /// <summary>
    /// Trains <paramref name="first"/> in a pack with more cells of its pack group, leased while it runs whenever a place is
    /// free. Every member keeps its own lease and heartbeat; each result is stored and its lease completed as soon as the
    /// member has been trained, decoded and scored, while the others go on training.
    /// </summary>
    private async Task RunPackAsync(ITrialQueueGrain queue, CellLease first, CellDefinition firstCell, CancellationToken stoppingToken)
    {
        var members = new Dictionary<string, (CellLease Lease, CancellationTokenSource Lost, Task Heartbeat)>(StringComparer.Ordinal);
        var finishing = new List<Task>();
        CellLease? waiting = first;
        var lastEmpty = DateTime.MinValue;
        int capacity = _options.PackSize;
        if (capacity == 0)
        {
            try
            {
                var calibration = await RunOnDedicatedThread(() => runner.CalibratePack(firstCell, _options.MaxPackSize, stoppingToken));
                capacity = calibration.PackSize;
                logger.LogInformation("Pack group of {Label}: {Calibration}", first.Work.Label, calibration);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Pack calibration for {Label} failed; training it alone", first.Work.Label);
                capacity = 1;
            }
        }

        PackRequest? Next()
        {
            while (true)
            {
                var lease = waiting;
                waiting = null;
                if (lease is null)
                {
                    // A pack of one (calibrated K = 1) takes no second cell of its group: the slot goes back to the queue's
                    // order instead of keeping to one group while other cells (e.g. dependants just made ready) wait.
                    if (capacity <= 1 || stoppingToken.IsCancellationRequested || DateTime.UtcNow - lastEmpty < _options.PollInterval * 4)
                    {
                        return null;
                    }

                    try
                    {
                        var capabilities = new WorkerCapabilities(_options.WorkerId, _options.DeviceKind, _options.DeviceCount, Environment.WorkingSet, 1,
                            first.Work.PackGroup);
                        lease = queue.LeaseAsync(capabilities).WaitAsync(_options.CallTimeout, stoppingToken).GetAwaiter().GetResult();
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                    {
                        logger.LogWarning(ex, "Leasing another cell for the pack failed; the pack goes on");
                    }
                    catch (OperationCanceledException)
                    {
                        return null;
                    }

                    if (lease is null)
                    {
                        lastEmpty = DateTime.UtcNow;
                        return null;
                    }
                }

                var key = lease.Work.CellKey;
                if (lease.Attempt > 1 && store.GetSucceededKeysAsync([key], stoppingToken).GetAwaiter().GetResult().Count > 0)
                {
                    finishing.Add(FinishLeaseAsync(queue, lease, null, stoppingToken));
                    continue;
                }

                CellDefinition cell;
                try
                {
                    cell = CellDefinition.FromJson(lease.Work.CellJson);
                }
                catch (Exception ex)
                {
                    finishing.Add(FinishLeaseAsync(queue, lease, Failed(lease, ex), stoppingToken));
                    continue;
                }

                var lost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                members[key] = (lease, lost, HeartbeatAsync(queue, lease, lost));
                return new PackRequest(cell, lease.Work.Metrics, _options.WorkerId, lease.Attempt, lost.Token)
                {
                    SaveTo = lease.Work.KeepArtifact ? Artifacts.CreateStaging() : null,
                };
            }
        }

        void Done(PackRequest request, CellOutcome? outcome, Exception? error)
        {
            if (!members.Remove(request.Cell.Key, out var member))
            {
                return;
            }

            var (lease, lost, heartbeat) = member;
            if (error is OperationCanceledException && lost.IsCancellationRequested)
            {
                LogStopped(lease, stoppingToken);
                lost.Cancel();
                finishing.Add(heartbeat.ContinueWith(_ => lost.Dispose(), TaskScheduler.Default));
                return;
            }

            lost.Cancel();
            var result = outcome is not null ? Succeeded(lease, outcome) : Failed(lease, error ?? new InvalidOperationException("no outcome"));
            finishing.Add(Task.Run(async () =>
            {
                await heartbeat;
                lost.Dispose();
                if (outcome is not null && request.SaveTo is { } staged)
                {
                    try
                    {
                        await StoreArtifactAsync(lease.Work, staged);
                    }
                    catch (Exception ex)
                    {
                        result = Failed(lease, new InvalidOperationException($"the trained method could not be stored as an artifact: {ex.Message}", ex));
                    }
                }

                await FinishLeaseAsync(queue, lease, result, stoppingToken);
            }));
        }

        try
        {
            await RunOnDedicatedThread(() =>
            {
                runner.RunPack(capacity, Next, Done, stoppingToken);
                return 0;
            });
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            foreach (var (lease, lost, heartbeat) in members.Values)
            {
                // Not reported by the runner (it stopped): their leases expire and the cells are retried.
                lost.Cancel();
                finishing.Add(heartbeat);
            }

            await Task.WhenAll(finishing);
        }
    }

    private ArtifactStore Artifacts => _artifacts ??= new ArtifactStore(_options.ResolvedArtifactDirectory);

    /// <summary>
    /// The trained methods a cell of a later stage needs (from the artifact index and store, checked against their hashes), and
    /// a staging folder for its own trained method when a later cell needs it; null for a plain cell.
    /// </summary>
    private async Task<TrialArtifacts?> ArtifactsForAsync(CellWork work, CancellationToken ct)
    {
        if (work.Dependencies.Count == 0 && !work.KeepArtifact)
        {
            return null;
        }

        var dependencies = new List<PeftDependency>();
        if (work.Dependencies.Count > 0)
        {
            var index = await store.GetArtifactsAsync(work.Dependencies, ct);
            var missing = work.Dependencies.Where(k => !index.ContainsKey(k)).ToList();
            if (missing.Count > 0)
            {
                throw new InvalidOperationException(
                    $"{missing.Count} of the {work.Dependencies.Count} cells this cell needs have no stored artifact " +
                    $"({string.Join(", ", missing.Select(k => k[..Math.Min(12, k.Length)]))}): they finished without keeping their trained method; " +
                    "resubmit the sweep so that they are trained again with execution.artifacts 'needed' or 'all'");
            }

            dependencies.AddRange(work.Dependencies.Select(k => new PeftDependency(k, Artifacts.Open(index[k]))));
        }

        return new TrialArtifacts(dependencies, work.KeepArtifact ? Artifacts.CreateStaging() : null);
    }

    /// <summary>Moves a trained method from its staging folder into the artifact store and indexes it (before the lease completes).</summary>
    private async Task StoreArtifactAsync(CellWork work, string staged)
    {
        var stored = Artifacts.Put(work.CellKey, ArtifactStore.PeftMethodKind, staged);
        await store.RecordArtifactAsync(stored, CancellationToken.None);
        logger.LogInformation("Cell {Label} ({Key}): trained method stored as artifact {Hash} ({Bytes:N0} bytes)", work.Label,
            work.CellKey[..12], stored.Sha256[..12], stored.Bytes);
    }

    private CellResultRecord Succeeded(CellLease lease, CellOutcome outcome) =>
        new(lease.Work.CellKey, lease.Attempt, CellStatus.Succeeded, outcome.Metrics, null, _options.WorkerId,
            Device(), outcome.WallSeconds, outcome.PeakMemoryBytes, outcome.ProvenanceJson, outcome.Outputs, DateTimeOffset.UtcNow)
        { CurveJson = outcome.Curve?.ToJson() };

    private CellResultRecord Failed(CellLease lease, Exception ex)
    {
        logger.LogError(ex, "Cell {Label} ({Key}) attempt {Attempt} failed", lease.Work.Label, lease.Work.CellKey[..12], lease.Attempt);
        return new CellResultRecord(lease.Work.CellKey, lease.Attempt, CellStatus.Failed, new Dictionary<string, double>(), Describe(ex),
            _options.WorkerId, Device(), 0, 0, "{}", [], DateTimeOffset.UtcNow);
    }

    private void LogStopped(CellLease lease, CancellationToken stoppingToken) =>
        logger.LogWarning("Cell {Label} ({Key}) attempt {Attempt}: stopped ({Reason})", lease.Work.Label, lease.Work.CellKey[..12], lease.Attempt,
            stoppingToken.IsCancellationRequested ? "worker stopping" : "lease lost or sweep cancelled");

    /// <summary>Stores the result (never cancelled: a computed result is not thrown away) and completes the lease; null: already done.</summary>
    private async Task FinishLeaseAsync(ITrialQueueGrain queue, CellLease lease, CellResultRecord? result, CancellationToken stoppingToken)
    {
        var work = lease.Work;
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
