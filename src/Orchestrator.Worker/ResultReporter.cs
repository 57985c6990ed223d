using System.Data.Common;
using System.Text;
using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Results;

namespace Orchestrator.Worker;

/// <summary>
/// Turns what a cell produced into its result row, stores it and completes the lease. A computed result is never thrown
/// away: it is saved in the worker's <see cref="ResultSpool"/> first, its write is retried while the database is unreachable
/// (up to <see cref="WorkerOptions.ResultWritePatience"/>) and the lease keeps being renewed until the result has been
/// written, so a database outage of minutes costs neither the result nor an attempt.
/// </summary>
internal sealed class ResultReporter(
    IResultStore store, QueueCalls calls, ResultSpool spool, TrainingRunRecorder runs, WorkerOptions options, Func<string> device, ILogger logger)
{
    /// <summary>Raised when a cell's lease has been completed (for progress displays).</summary>
    public event Action<CellLease, bool>? CellFinished;

    public TrainingRunRecorder Runs => runs;

    public CellResultRecord Succeeded(CellLease lease, CellOutcome outcome) =>
        new(lease.Work.CellKey, lease.Attempt, CellStatus.Succeeded, outcome.Metrics, null, options.WorkerId,
            device(), outcome.WallSeconds, outcome.PeakMemoryBytes, outcome.ProvenanceJson, outcome.Outputs, DateTimeOffset.UtcNow)
        { CurveJson = outcome.Curve?.ToJson() };

    public CellResultRecord Failed(CellLease lease, Exception ex)
    {
        logger.LogError(ex, "Cell {Label} ({Key}) attempt {Attempt} failed", lease.Work.Label, lease.Work.CellKey[..12], lease.Attempt);
        return new CellResultRecord(lease.Work.CellKey, lease.Attempt, CellStatus.Failed, new Dictionary<string, double>(), Describe(ex),
            options.WorkerId, device(), 0, 0, "{}", [], DateTimeOffset.UtcNow);
    }

    public void LogStopped(CellLease lease, bool workerStopping) =>
        logger.LogWarning("Cell {Label} ({Key}) attempt {Attempt}: stopped ({Reason})", lease.Work.Label, lease.Work.CellKey[..12], lease.Attempt,
            workerStopping ? "worker stopping" : "lease lost or sweep cancelled");

    /// <summary>
    /// Stores <paramref name="result"/> while <paramref name="held"/> keeps renewing, then stops renewing and completes the lease
    /// with what the database then holds for the cell (a success stored by another attempt counts), so that the queue follows the
    /// database. A null result: the cell was already done. When the database stays unreachable past the patience, or the worker is stopped
    /// for good (<paramref name="hardStop"/>) meanwhile, the result stays in the spool and the lease is left to run out.
    /// </summary>
    public async Task FinishAsync(ITrialQueueGrain queue, HeldLease? held, CellLease lease, CellResultRecord? result, string? runId,
        CancellationToken hardStop)
    {
        var work = lease.Work;
        var stored = new StoredResult(false, CellStatus.Succeeded, lease.Attempt, null);
        if (result is not null)
        {
            var spooled = new SpooledResult(result, lease.LeaseId, work.Label, runId);
            try
            {
                stored = await WriteAsync(spooled, Save(spooled), hardStop);
            }
            catch (Exception ex) when (IsTransient(ex))
            {
                logger.LogError(ex, "Cell {Label} ({Key}): the database could not be written; its result stays in the spool ({Spool}) " +
                    "and is uploaded when this worker starts again", work.Label, work.CellKey[..12], spool.Directory);
                if (held is not null)
                {
                    await held.StopRenewingAsync();
                }

                return;
            }
        }

        if (held is not null)
        {
            await held.StopRenewingAsync();
        }

        var succeeded = result is null || result.Status == CellStatus.Succeeded;
        var accepted = await calls.CallAsync(() => queue.CompleteAsync(new CellCompletion(lease.LeaseId, succeeded, result?.Error)), hardStop);
        logger.LogInformation("Cell {Label} ({Key}) attempt {Attempt}: {Status}{Written}{Accepted}", work.Label, work.CellKey[..12], lease.Attempt,
            result?.Status ?? "already done",
            result is null || stored.Written ? "" : $" (not written: the database holds {stored.Status} attempt {stored.Attempt})",
            accepted ? "" : " (lease no longer current)");
        CellFinished?.Invoke(lease, succeeded);
    }

    /// <summary>
    /// Uploads what an earlier run of a worker on this spool directory computed but could not write (a crash, a long outage),
    /// then tells the queue, whose lease has long expired, so that it can accept the late result. Retries while the database is
    /// unreachable; returns how many results were uploaded.
    /// </summary>
    public async Task<int> UploadSpooledAsync(Func<ITrialQueueGrain?> queue, CancellationToken stopping)
    {
        var unreadable = new List<string>();
        var pending = spool.Pending(unreadable);
        foreach (var file in unreadable)
        {
            logger.LogError("Spooled result {File} cannot be read; it is left where it is", file);
        }

        var uploaded = 0;
        foreach (var (path, spooled) in pending)
        {
            StoredResult stored;
            try
            {
                stored = await WriteAsync(spooled, path, stopping);
            }
            catch (Exception ex) when (IsTransient(ex) || ex is OperationCanceledException)
            {
                logger.LogWarning("Spooled results not uploaded yet ({Reason}); they stay in {Spool}", ex.Message, spool.Directory);
                return uploaded;
            }

            uploaded++;
            logger.LogInformation("Uploaded the spooled result of {Label} ({Key}) attempt {Attempt}: {Status}{Written}", spooled.Label,
                spooled.Result.CellKey[..12], spooled.Result.Attempt, spooled.Result.Status,
                stored.Written ? "" : $" (not written: the database holds {stored.Status} attempt {stored.Attempt})");
            if (queue() is { } grain)
            {
                // The lease has long run out: the cell key lets the queue accept a success the database now holds.
                var completion = new CellCompletion(spooled.LeaseId, stored.Succeeded, stored.Succeeded ? null : stored.Error, spooled.Result.CellKey,
                    stored.Attempt);
                try
                {
                    await grain.CompleteAsync(completion).WaitAsync(options.CallTimeout, stopping);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogInformation("The queue was not told about the uploaded result of {Label} ({Reason}); it finds it when it leases the cell again",
                        spooled.Label, ex.Message);
                }
            }
        }

        return uploaded;
    }

    private string? Save(SpooledResult spooled)
    {
        try
        {
            return spool.Save(spooled);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not spool the result of {Label} to {Spool}; writing it directly", spooled.Label, spool.Directory);
            return null;
        }
    }

    /// <summary>Writes a spooled result, retrying while the database is unreachable; deletes its spool file once the database has answered.</summary>
    private async Task<StoredResult> WriteAsync(SpooledResult spooled, string? path, CancellationToken hardStop)
    {
        var result = spooled.Result;
        var deadline = DateTime.UtcNow + options.ResultWritePatience;
        var delay = TimeSpan.FromMilliseconds(500);
        var attempt = 0;
        while (true)
        {
            StoredResult stored;
            try
            {
                stored = await store.WriteResultAsync(result, CancellationToken.None);
            }
            catch (Exception ex) when (IsTransient(ex) && DateTime.UtcNow < deadline && !hardStop.IsCancellationRequested)
            {
                if (attempt++ % 10 == 0)
                {
                    logger.LogWarning("Cell {Label}: the database is unreachable ({Reason}); its result is spooled and the write retried",
                        spooled.Label, ex.GetBaseException().Message);
                }

                try
                {
                    await Task.Delay(delay, hardStop);
                }
                catch (OperationCanceledException)
                {
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                continue;
            }
            catch (Exception ex) when (!IsTransient(ex) && path is not null)
            {
                // The database refused this row for good: retrying it at every start would not help.
                logger.LogError(ex, "Cell {Label}: the database refused its result; the spooled copy is removed", spooled.Label);
                ResultSpool.Delete(path);
                throw;
            }

            if (path is not null)
            {
                ResultSpool.Delete(path);
            }

            await runs.FinishAsync(spooled.RunId, result.Status == CellStatus.Succeeded ? TrainingRunOutcome.Succeeded : TrainingRunOutcome.Failed);
            return stored;
        }
    }

    /// <summary>True for a database that cannot be reached now (connection refused or lost, shutting down, timed out).</summary>
    public static bool IsTransient(Exception ex) => ex switch
    {
        DbException { IsTransient: true } => true,
        TimeoutException or System.Net.Sockets.SocketException or IOException => true,
        _ => ex.InnerException is not null && IsTransient(ex.InnerException),
    };

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
