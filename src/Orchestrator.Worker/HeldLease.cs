using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;

namespace Orchestrator.Worker;

/// <summary>
/// A lease this worker holds, renewed in the background (every third of its lease time) from the moment it is leased until
/// <see cref="StopRenewingAsync"/>: through training, artifact staging and the result write, so that a slow write never lets
/// the lease expire. <see cref="Token"/> stops the cell's training when the lease is no longer current (expired, or its sweep
/// cancelled) or when the worker aborts its running cells (<see cref="PullWorker"/>).
/// </summary>
internal sealed class HeldLease : IAsyncDisposable
{
    private readonly ITrialQueueGrain _queue;
    private readonly QueueCalls _calls;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _renewing = new();
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _training;
    private readonly Task _heartbeat;

    public HeldLease(ITrialQueueGrain queue, CellLease lease, QueueCalls calls, ILogger logger, CancellationToken abort)
    {
        _queue = queue;
        _calls = calls;
        _logger = logger;
        Lease = lease;
        _training = CancellationTokenSource.CreateLinkedTokenSource(_lost.Token, abort);
        _heartbeat = HeartbeatAsync();
    }

    public CellLease Lease { get; }

    public CellWork Work => Lease.Work;

    /// <summary>Cancelled when the cell must stop training: the lease was lost, or the worker aborts.</summary>
    public CancellationToken Token => _training.Token;

    /// <summary>True once a renewal was refused (the queue no longer counts this lease as current).</summary>
    public bool IsLost => _lost.IsCancellationRequested;

    /// <summary>Stops renewing and waits for the heartbeat to end (the lease then runs out unless completed or released).</summary>
    public async Task StopRenewingAsync()
    {
        await _renewing.CancelAsync();
        await _heartbeat;
    }

    public async ValueTask DisposeAsync()
    {
        await StopRenewingAsync();
        _training.Dispose();
        _lost.Dispose();
        _renewing.Dispose();
    }

    private async Task HeartbeatAsync()
    {
        var period = TimeSpan.FromSeconds(Math.Max(0.5, Lease.Work.LeaseSeconds / 3.0));
        var ct = _renewing.Token;
        try
        {
            while (!ct.IsCancellationRequested && !_lost.IsCancellationRequested)
            {
                await Task.Delay(period, ct);
                bool renewed;
                try
                {
                    renewed = await _calls.CallAsync(() => _queue.RenewAsync(Lease.LeaseId), ct);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    _logger.LogWarning(ex, "Lease renewal for {Label} failed; will retry", Lease.Work.Label);
                    continue;
                }

                if (!renewed)
                {
                    _logger.LogWarning("Lease for {Label} is no longer current; stopping its training", Lease.Work.Label);
                    await _lost.CancelAsync();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
