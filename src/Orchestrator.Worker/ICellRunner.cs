using Orchestrator.Core.Cells;
using Orchestrator.Training;

namespace Orchestrator.Worker;

/// <summary>Runs one cell on the calling thread and returns its outcome (the pull loop calls it off the Orleans scheduler).</summary>
public interface ICellRunner
{
    /// <param name="artifacts">The trained methods the cell needs, and where to save its own (null: neither).</param>
    CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt, CancellationToken ct, TrialArtifacts? artifacts = null);

    /// <summary>True when <paramref name="cell"/> can train in a pack with others of its pack group (<see cref="RunPack"/>).</summary>
    bool CanPack(CellDefinition cell) => false;

    /// <summary>
    /// Trains cells of one pack group together, at most <paramref name="capacity"/> at a time, asking <paramref name="next"/>
    /// for more whenever a place is free (null: none now) and telling <paramref name="done"/> about each cell as soon as it has
    /// an outcome or failed (on the calling thread).
    /// </summary>
    void RunPack(int capacity, Func<PackRequest?> next, Action<PackRequest, CellOutcome?, Exception?> done, CancellationToken ct) =>
        throw new NotSupportedException("This cell runner does not pack cells.");

    /// <summary>The pack size to use for <paramref name="cell"/>'s pack group, at most <paramref name="max"/> (measured once per group).</summary>
    PackCalibration CalibratePack(CellDefinition cell, int max, CancellationToken ct) => new(1, []);
}

/// <summary>The real runner: trains, decodes and scores with TorchSharp.</summary>
public sealed class TrainingCellRunner(CellRunner runner) : ICellRunner
{
    public CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt, CancellationToken ct,
        TrialArtifacts? artifacts = null) =>
        runner.Run(cell, metrics, workerId, attempt, null, ct, artifacts);

    public bool CanPack(CellDefinition cell) => TrialRunner.CanPack(cell);

    public void RunPack(int capacity, Func<PackRequest?> next, Action<PackRequest, CellOutcome?, Exception?> done, CancellationToken ct) =>
        runner.RunPack(capacity, next, done, ct);

    public PackCalibration CalibratePack(CellDefinition cell, int max, CancellationToken ct) => runner.Trials.CalibratePack(cell, max, ct);
}

/// <summary>
/// A stand-in that sleeps instead of training, for dispatch benchmarks and fault-tolerance tests of the queue,
/// leases and store (everything but the training is real). Enabled only by the worker setting
/// <see cref="WorkerOptions.SimulateCellSeconds"/>; its results say so in their provenance.
/// </summary>
public sealed class SimulatedCellRunner(TimeSpan duration) : ICellRunner
{
    public CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt, CancellationToken ct,
        TrialArtifacts? artifacts = null)
    {
        if (duration > TimeSpan.Zero)
        {
            ct.WaitHandle.WaitOne(duration);
        }

        ct.ThrowIfCancellationRequested();
        if (artifacts?.SaveTo is { } saveTo)
        {
            // A stand-in artifact (the simulation trains nothing): the cell key, so that the store has content to address.
            Directory.CreateDirectory(saveTo);
            File.WriteAllText(Path.Combine(saveTo, "simulated.txt"), cell.Key);
        }

        // A deterministic pseudo-score per cell, so aggregation has something to show.
        var score = Convert.ToUInt32(cell.Key[..8], 16) % 10_000 / 100.0;
        var scores = metrics.ToDictionary(m => m, _ => score);
        var provenance = $$"""{"simulated":true,"simulated_seconds":{{duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"worker":"{{workerId}}","attempt":{{attempt}}}""";
        return new CellOutcome(scores, [], provenance, duration.TotalSeconds, 0);
    }
}
