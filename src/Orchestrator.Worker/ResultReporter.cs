using System.Text;
using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Results;

namespace Orchestrator.Worker;

/// <summary>
/// Turns what a cell produced into its result row, stores it and completes the lease. The lease keeps being renewed until the
/// result has been written: a slow database never lets it expire under a computed result.
/// </summary>
internal sealed class ResultReporter(IResultStore store, QueueCalls calls, string workerId, Func<string> device, ILogger logger)
{
    /// <summary>Raised when a cell's lease has been completed (for progress displays).</summary>
    public event Action<CellLease, bool>? CellFinished;

    public CellResultRecord Succeeded(CellLease lease, CellOutcome outcome) =>
        new(lease.Work.CellKey, lease.Attempt, CellStatus.Succeeded, outcome.Metrics, null, workerId,
            device(), outcome.WallSeconds, outcome.PeakMemoryBytes, outcome.ProvenanceJson, outcome.Outputs, DateTimeOffset.UtcNow)
        { CurveJson = outcome.Curve?.ToJson() };

    public CellResultRecord Failed(CellLease lease, Exception ex)
    {
        logger.LogError(ex, "Cell {Label} ({Key}) attempt {Attempt} failed", lease.Work.Label, lease.Work.CellKey[..12], lease.Attempt);
        return new CellResultRecord(lease.Work.CellKey, lease.Attempt, CellStatus.Failed, new Dictionary<string, double>(), Describe(ex),
            workerId, device(), 0, 0, "{}", [], DateTimeOffset.UtcNow);
    }

    public void LogStopped(CellLease lease, bool workerStopping) =>
        logger.LogWarning("Cell {Label} ({Key}) attempt {Attempt}: stopped ({Reason})", lease.Work.Label, lease.Work.CellKey[..12], lease.Attempt,
            workerStopping ? "worker stopping" : "lease lost or sweep cancelled");

    /// <summary>
    /// Stores <paramref name="result"/> (never cancelled: a computed result is not thrown away) while <paramref name="held"/>
    /// keeps renewing, then stops renewing and completes the lease with what the database then holds for the cell (a success
    /// stored by another attempt counts), so that the queue follows the database. A null result: the cell was already done.
    /// </summary>
    public async Task FinishAsync(ITrialQueueGrain queue, HeldLease? held, CellLease lease, CellResultRecord? result, CancellationToken stoppingToken)
    {
        var work = lease.Work;
        var stored = result is not null
            ? await store.WriteResultAsync(result, CancellationToken.None)
            : new StoredResult(false, CellStatus.Succeeded, lease.Attempt, null);
        if (held is not null)
        {
            await held.StopRenewingAsync();
        }

        var succeeded = stored.Succeeded;
        var completion = new CellCompletion(lease.LeaseId, succeeded, succeeded ? null : stored.Error ?? result?.Error, work.CellKey, stored.Attempt);
        var accepted = await calls.CallAsync(() => queue.CompleteAsync(completion), stoppingToken);
        logger.LogInformation("Cell {Label} ({Key}) attempt {Attempt}: {Status}{Written}{Accepted}", work.Label, work.CellKey[..12], lease.Attempt,
            result?.Status ?? "already done",
            result is null || stored.Written ? "" : $" (not written: the database holds {stored.Status} attempt {stored.Attempt})",
            accepted ? "" : " (lease no longer current)");
        CellFinished?.Invoke(lease, succeeded);
    }

    /// <summary>The reason and the tail of the stack: enough to act on, small enough to store.</summary>
    public static string Describe(Exception ex)
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
