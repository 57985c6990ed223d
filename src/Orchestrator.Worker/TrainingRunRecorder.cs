using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Results;

namespace Orchestrator.Worker;

/// <summary>
/// Writes the training-run log (<see cref="ITrainingRunLog"/>): a row when a cell starts training and its outcome when it ends.
/// The log is evidence, not control: a write that fails is logged and training goes on.
/// </summary>
internal sealed class TrainingRunRecorder(ITrainingRunLog log, string workerId, ILogger logger)
{
    /// <summary>Records the start of a training of <paramref name="lease"/>'s cell and returns the run's id.</summary>
    public async Task<string> StartAsync(CellLease lease)
    {
        var started = Begin(lease);
        await started.Recorded;
        return started.RunId;
    }

    /// <summary>Starts recording a training of <paramref name="lease"/>'s cell without waiting (from the training thread).</summary>
    public StartedRun Begin(CellLease lease) => Begin(lease.Work.CellKey, lease.Attempt, lease.Work.Label);

    /// <summary>Starts recording a training of a cell outside a lease of it (attempt 0: rebuilding its lost artifact).</summary>
    public StartedRun Begin(string cellKey, int attempt, string label)
    {
        var run = new TrainingRun(Guid.NewGuid().ToString("N"), cellKey, attempt, workerId, DateTimeOffset.UtcNow);
        return new StartedRun(run.RunId, Task.Run(() => RecordAsync(run, label)));
    }

    private async Task RecordAsync(TrainingRun run, string label)
    {
        try
        {
            await log.StartTrainingRunAsync(run, CancellationToken.None);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Could not record the start of training cell {Label}; training it anyway", label);
        }
    }

    /// <summary>Records how the run ended (<see cref="TrainingRunOutcome"/>).</summary>
    public async Task FinishAsync(string? runId, string outcome)
    {
        if (runId is null)
        {
            return;
        }

        try
        {
            await log.FinishTrainingRunAsync(runId, outcome, DateTimeOffset.UtcNow, CancellationToken.None);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Could not record the end ({Outcome}) of training run {RunId}", outcome, runId);
        }
    }
}

/// <summary>A training run whose start is being recorded (<see cref="Recorded"/> completes once written, or given up).</summary>
internal sealed record StartedRun(string RunId, Task Recorded);
