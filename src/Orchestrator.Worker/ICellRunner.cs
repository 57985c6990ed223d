using Orchestrator.Core.Cells;

namespace Orchestrator.Worker;

/// <summary>Runs one cell on the calling thread and returns its outcome (the pull loop calls it off the Orleans scheduler).</summary>
public interface ICellRunner
{
    CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt, CancellationToken ct);
}

/// <summary>The real runner: trains, decodes and scores with TorchSharp.</summary>
public sealed class TrainingCellRunner(CellRunner runner) : ICellRunner
{
    public CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt, CancellationToken ct) =>
        runner.Run(cell, metrics, workerId, attempt, null, ct);
}

/// <summary>
/// A stand-in that sleeps instead of training, for dispatch benchmarks and fault-tolerance tests of the queue,
/// leases and store (everything but the training is real). Enabled only by the worker setting
/// <see cref="WorkerOptions.SimulateCellSeconds"/>; its results say so in their provenance.
/// </summary>
public sealed class SimulatedCellRunner(TimeSpan duration) : ICellRunner
{
    public CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt, CancellationToken ct)
    {
        if (duration > TimeSpan.Zero)
        {
            ct.WaitHandle.WaitOne(duration);
        }

        ct.ThrowIfCancellationRequested();
        // A deterministic pseudo-score per cell, so aggregation has something to show.
        var score = Convert.ToUInt32(cell.Key[..8], 16) % 10_000 / 100.0;
        var scores = metrics.ToDictionary(m => m, _ => score);
        var provenance = $$"""{"simulated":true,"simulated_seconds":{{duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"worker":"{{workerId}}","attempt":{{attempt}}}""";
        return new CellOutcome(scores, [], provenance, duration.TotalSeconds, 0);
    }
}
