using Orchestrator.Core.Cells;
using Orchestrator.Training.Peft;

namespace Orchestrator.Training;

/// <summary>Scores decoded outputs against their references with one named metric (e.g. the worker's metric suite).</summary>
public delegate IEnumerable<(string Name, double Value)> TrialScorer(
    string metric, IReadOnlyList<string> outputs, IReadOnlyList<IReadOnlyList<string>> references);

/// <summary>One cell for <see cref="TrialRunner.RunPack"/>, with what its outcome needs and its own cancellation (its lease).</summary>
public sealed record PackRequest(CellDefinition Cell, IReadOnlyList<string> Metrics, string WorkerId, int Attempt,
    CancellationToken Cancellation, IProgress<TrainProgress>? Progress = null)
{
    /// <summary>Where to save the cell's trained method (a <see cref="PeftCheckpoint"/> folder) once trained; null: not kept.</summary>
    public string? SaveTo { get; init; }
}

/// <summary>The pack size chosen for a pack group and the step times measured for it (seconds per packed step for each K tried).</summary>
public sealed record PackCalibration(int PackSize, IReadOnlyList<(int K, double StepSeconds)> Measured)
{
    public override string ToString() =>
        $"K={PackSize} (" + string.Join(", ", Measured.Select(m => $"K={m.K}: {m.K / m.StepSeconds:F1} trial-steps/s")) + ")";
}

/// <summary>
/// What a trial of a staged sweep exchanges with the artifact store: the trained methods of the cells it depends on (in the
/// order of its cell's <c>needs</c>) and the folder to save its own trained method to (a <see cref="PeftCheckpoint"/>), or null.
/// </summary>
public sealed record TrialArtifacts(IReadOnlyList<PeftDependency> Dependencies, string? SaveTo = null)
{
    public static TrialArtifacts None { get; } = new([]);
}

/// <summary>Seconds spent in each phase of a trial.</summary>
public sealed record TrialTimings(double Setup, double Train, double Decode, double Score);

/// <summary>What one trial (cell) produced: scores, decoded outputs, provenance (JSON), wall time and peak memory.</summary>
/// <param name="PeakMemoryBytes">Largest resident set of the process sampled during the trial (other slots included).</param>
public sealed record TrialOutcome(
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<string> Outputs,
    string ProvenanceJson,
    double WallSeconds,
    long PeakMemoryBytes)
{
    public required TrialTimings Timings { get; init; }

    public required TrainReport Training { get; init; }

    public long TrainableParameters { get; init; }
}
