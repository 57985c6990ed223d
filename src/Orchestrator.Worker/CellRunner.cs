using Microsoft.Extensions.Logging;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Curves;
using Orchestrator.Training;

namespace Orchestrator.Worker;

/// <summary>What one cell produced: its scores, decoded outputs and provenance.</summary>
public sealed record CellOutcome(
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<string> Outputs,
    string ProvenanceJson,
    double WallSeconds,
    long PeakMemoryBytes)
{
    /// <summary>The training curve stored with the result (null: the runner trained nothing to show).</summary>
    public TrainingCurve? Curve { get; init; }
}

/// <summary>
/// The worker's cell runner: <see cref="TrialRunner"/> (Orchestrator.Training) scoring with the worker's
/// <see cref="MetricSuite"/>. One instance per process, so its dataset and base-model caches are shared by all slots.
/// </summary>
public sealed class CellRunner
{
    private readonly TrialRunner _runner = new(MetricSuite.Score);

    /// <param name="logger">Hears when a base is pretrained or loaded (optional).</param>
    public CellRunner(ILogger<CellRunner>? logger = null)
    {
        if (logger is not null)
        {
            _runner.Bases.Log = message => logger.LogInformation("{Message}", message);
        }
    }

    /// <summary>The trial runner behind this worker (its base-model cache, for logs and tests).</summary>
    public TrialRunner Trials => _runner;

    public CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt,
        IProgress<TrainProgress>? progress, CancellationToken ct, TrialArtifacts? artifacts = null)
    {
        return ToCellOutcome(_runner.Run(cell, metrics, workerId, attempt, progress, ct, artifacts));
    }

    /// <summary>Trains a pack of cells on one shared base (see <see cref="TrialRunner.RunPack"/>).</summary>
    public void RunPack(int capacity, Func<PackRequest?> next, Action<PackRequest, CellOutcome?, Exception?> done, CancellationToken ct) =>
        _runner.RunPack(capacity, next, (request, outcome, error) => done(request, outcome is null ? null : ToCellOutcome(outcome), error), ct);

    private static CellOutcome ToCellOutcome(TrialOutcome outcome) =>
        new(outcome.Metrics, outcome.Outputs, outcome.ProvenanceJson, outcome.WallSeconds, outcome.PeakMemoryBytes)
        {
            Curve = TrainingCurve.From(outcome.Training.StepLosses, outcome.Training.DevLosses, outcome.Training.BestStep, outcome.Training.Steps),
        };
}
