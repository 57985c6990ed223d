namespace Orchestrator.Results;

/// <summary>A submitted sweep. <see cref="SpecYaml"/> is the spec as submitted; <see cref="SpecHash"/> its content hash.</summary>
public sealed record SweepRecord(
    string SweepId,
    string Name,
    string SpecYaml,
    string SpecHash,
    DateTimeOffset SubmittedAt,
    int CellCount);

/// <summary>One cell (= one trained model), identified by its content-hash <see cref="CellKey"/>.</summary>
public sealed record CellDescriptor(
    string CellKey,
    string Dataset,
    string Split,
    string Method,
    int Size,
    int Subsample,
    int Seed,
    string CellJson);

/// <summary>
/// The outcome of one attempt at a cell. <see cref="Status"/> is <see cref="CellStatus.Succeeded"/> or
/// <see cref="CellStatus.Failed"/>. A metric value of <see cref="double.NaN"/> is stored as SQL NULL.
/// </summary>
public sealed record CellResultRecord(
    string CellKey,
    int Attempt,
    string Status,
    IReadOnlyDictionary<string, double> Metrics,
    string? Error,
    string WorkerId,
    string Device,
    double WallSeconds,
    long PeakMemoryBytes,
    string ProvenanceJson,
    IReadOnlyList<string> Outputs,
    DateTimeOffset FinishedAt);

/// <summary>The values of <see cref="CellResultRecord.Status"/>.</summary>
public static class CellStatus
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}
