using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Training;

namespace Orchestrator.Worker;

/// <summary>
/// One pack on one slot: trains a first cell together with more cells of its pack group on one shared base, up to the
/// pack's capacity at once. A feeder leases further cells of the group asynchronously while the pack trains and hands them
/// over through a queue, so the training thread never waits for a cluster or database call. Every member keeps its own
/// lease (<see cref="HeldLease"/>) and result; each result is stored and its lease completed as soon as the member has been
/// trained, decoded and scored, while the others go on training.
/// </summary>
/// <param name="leasing">Stops leasing more cells (the worker is stopping).</param>
/// <param name="abort">Stops training (the worker stops its running cells).</param>
/// <param name="stopping">Ends what is left (results still to write, calls still to make): the host is going away.</param>
internal sealed class PackRun(WorkerParts parts, ITrialQueueGrain queue, CancellationToken leasing, CancellationToken abort, CancellationToken stopping)
{
    private readonly ConcurrentQueue<Member> _ready = new();
    private readonly ConcurrentDictionary<string, Member> _training = new(StringComparer.Ordinal);
    private readonly List<Task> _finishing = [];
    private readonly SemaphoreSlim _placeFreed = new(0);
    private int _capacity = 1;
    private string? _group;

    private sealed class Member(HeldLease held, PackRequest request)
    {
        public HeldLease Held { get; } = held;

        public PackRequest Request { get; } = request;

        /// <summary>Set when the runner takes the member (its training starts).</summary>
        public StartedRun? Run { get; set; }

        public async Task<string?> RunIdAsync()
        {
            if (Run is null)
            {
                return null;
            }

            await Run.Recorded;
            return Run.RunId;
        }
    }

    public async Task RunAsync(CellLease first, CellDefinition firstCell)
    {
        _group = first.Work.PackGroup;
        await AdmitAsync(first);
        if (!_ready.IsEmpty)
        {
            _capacity = await CapacityAsync(first, firstCell);
        }

        using var feeding = CancellationTokenSource.CreateLinkedTokenSource(leasing);
        var feeder = _capacity > 1 ? FeedAsync(feeding.Token) : Task.CompletedTask;
        try
        {
            // A cell the feeder leased just as the pack ran out of members starts the next pack instead of waiting for its lease to expire.
            while (!_ready.IsEmpty && !abort.IsCancellationRequested)
            {
                await TrainAsync();
                if (_ready.IsEmpty)
                {
                    await feeding.CancelAsync();
                    await feeder;
                }
            }
        }
        finally
        {
            await feeding.CancelAsync();
            await feeder;
            while (_ready.TryDequeue(out var waiting))
            {
                AddFinishing(StopAsync(waiting));
            }

            foreach (var member in _training.Values)
            {
                // Not reported by the runner (it stopped): their leases run out and the cells are retried.
                AddFinishing(StopAsync(member));
            }

            Task[] finishing;
            lock (_finishing)
            {
                finishing = [.. _finishing];
            }

            await Task.WhenAll(finishing);
        }
    }

    private async Task<int> CapacityAsync(CellLease first, CellDefinition firstCell)
    {
        if (parts.Options.PackSize != 0)
        {
            return parts.Options.PackSize;
        }

        try
        {
            var calibration = await parts.OnTrainingThread(() => parts.Runner.CalibratePack(firstCell, parts.Options.MaxPackSize, abort));
            parts.Logger.LogInformation("Pack group of {Label}: {Calibration}", first.Work.Label, calibration);
            return calibration.PackSize;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !abort.IsCancellationRequested)
        {
            parts.Logger.LogWarning(ex, "Pack calibration for {Label} failed; training it alone", first.Work.Label);
            return 1;
        }
    }

    private async Task TrainAsync()
    {
        try
        {
            await parts.OnTrainingThread(() =>
            {
                parts.Runner.RunPack(_capacity, Next, Done, abort);
                return 0;
            });
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
        }
    }

    /// <summary>Asked by the runner (training thread) whenever a place is free: a leased cell ready to start, or null. Never waits.</summary>
    private PackRequest? Next()
    {
        if (!_ready.TryDequeue(out var member))
        {
            return null;
        }

        _training[member.Request.Cell.Key] = member;
        member.Run = parts.Reporter.Runs.Begin(member.Held.Lease);
        return member.Request;
    }

    /// <summary>Told by the runner (training thread) about a member with an outcome or an error; the rest happens off this thread.</summary>
    private void Done(PackRequest request, CellOutcome? outcome, Exception? error)
    {
        if (!_training.TryRemove(request.Cell.Key, out var member))
        {
            return;
        }

        _placeFreed.Release();
        AddFinishing(Task.Run(() => FinishAsync(member, outcome, error)));
    }

    private async Task FinishAsync(Member member, CellOutcome? outcome, Exception? error)
    {
        var lease = member.Held.Lease;
        try
        {
            if (error is OperationCanceledException && member.Held.Token.IsCancellationRequested)
            {
                parts.Reporter.LogStopped(lease, abort.IsCancellationRequested);
                await StopAsync(member);
                return;
            }

            var result = outcome is not null ? parts.Reporter.Succeeded(lease, outcome) : parts.Reporter.Failed(lease, error ?? new InvalidOperationException("no outcome"));
            if (outcome is not null && member.Request.SaveTo is { } staged)
            {
                try
                {
                    await parts.Artifacts.StoreAsync(lease.Work, staged);
                }
                catch (Exception ex)
                {
                    result = parts.Reporter.Failed(lease, new InvalidOperationException($"the trained method could not be stored as an artifact: {ex.Message}", ex));
                }
            }

            ArtifactStaging.Discard(member.Request.SaveTo);
            await parts.Reporter.FinishAsync(queue, member.Held, lease, result, await member.RunIdAsync(), stopping);
            await member.Held.DisposeAsync();
        }
        catch (Exception ex)
        {
            parts.Logger.LogError(ex, "Cell {Label} could not be finished; its lease will expire", lease.Work.Label);
            await member.Held.DisposeAsync();
        }
    }

    /// <summary>
    /// A member that will not finish here: its staging folder goes, its training run is recorded as stopped, and its lease is
    /// released when the worker is stopping (no attempt charged), otherwise no longer renewed.
    /// </summary>
    private async Task StopAsync(Member member)
    {
        ArtifactStaging.Discard(member.Request.SaveTo);
        await parts.Reporter.Runs.FinishAsync(await member.RunIdAsync(), Orchestrator.Results.TrainingRunOutcome.Stopped);
        await parts.ReleaseAsync(queue, member.Held, abort, stopping);
        await member.Held.DisposeAsync();
    }

    /// <summary>Leases further cells of the pack group while places are free (after an empty answer, only every few poll intervals).</summary>
    private async Task FeedAsync(CancellationToken ct)
    {
        var lastEmpty = DateTime.MinValue;
        var options = parts.Options;
        var capabilities = new WorkerCapabilities(options.WorkerId, options.DeviceKind, options.DeviceCount, Environment.WorkingSet, 1, _group);
        while (!ct.IsCancellationRequested)
        {
            var open = _capacity - _training.Count - _ready.Count;
            if (open <= 0 || DateTime.UtcNow - lastEmpty < options.PollInterval * 4)
            {
                await WaitForPlaceAsync(options.PollInterval, ct);
                continue;
            }

            CellLease? lease;
            try
            {
                var request = capabilities with { MemoryBytes = Environment.WorkingSet, RequestId = Guid.NewGuid().ToString("N") }; // one id for every retry
                lease = await parts.Calls.CallAsync(() => queue.LeaseAsync(request), ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                parts.Logger.LogWarning(ex, "Leasing another cell for the pack failed; the pack goes on");
                lease = null;
            }

            if (lease is null)
            {
                lastEmpty = DateTime.UtcNow;
                continue;
            }

            await AdmitAsync(lease);
        }
    }

    private async Task WaitForPlaceAsync(TimeSpan poll, CancellationToken ct)
    {
        try
        {
            await _placeFreed.WaitAsync(poll, ct);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Takes a leased cell into the pack: finished at once when already done or unreadable, otherwise held and queued to start.</summary>
    private async Task AdmitAsync(CellLease lease)
    {
        if (await parts.AlreadySucceededAsync(lease, stopping))
        {
            AddFinishing(parts.Reporter.FinishAsync(queue, null, lease, null, null, stopping));
            return;
        }

        CellDefinition cell;
        try
        {
            cell = CellDefinition.FromJson(lease.Work.CellJson);
        }
        catch (Exception ex)
        {
            AddFinishing(parts.Reporter.FinishAsync(queue, null, lease, parts.Reporter.Failed(lease, ex), null, stopping));
            return;
        }

        var held = new HeldLease(queue, lease, parts.Calls, parts.Logger, abort);
        _ready.Enqueue(new Member(held, new PackRequest(cell, lease.Work.Metrics, parts.Options.WorkerId, lease.Attempt, held.Token)
        {
            SaveTo = parts.Artifacts.StagingFor(lease.Work),
        }));
    }

    private void AddFinishing(Task task)
    {
        lock (_finishing)
        {
            _finishing.Add(task);
        }
    }
}
