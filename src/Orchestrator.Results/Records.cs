namespace Orchestrator.Results;

/// <summary>A submitted sweep. <see cref="SpecYaml"/> is the spec as submitted; <see cref="SpecHash"/> its content hash.</summary>
public sealed record SweepRecord(
    string SweepId,
    string Name,
    string SpecYaml,
    string SpecHash,
    DateTimeOffset SubmittedAt,
    int CellCount)
{
    /// <summary><see cref="SweepStatus.Active"/> or <see cref="SweepStatus.Cancelled"/>.</summary>
    public string Status { get; init; } = SweepStatus.Active;

    /// <summary>Attempts per cell before it is marked failed (the spec's <c>execution.max_attempts</c>).</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Lease time per attempt (the spec's <c>execution.lease_seconds</c>).</summary>
    public int LeaseSeconds { get; init; } = 600;

    /// <summary>Metric names the spec asks for.</summary>
    public IReadOnlyList<string> Metrics { get; init; } = ["bleu"];

    /// <summary>Device kind a worker must have to run this sweep's cells (null: any).</summary>
    public string? RequiredDevice { get; init; }

    /// <summary>The spec's <c>execution.artifacts</c>: <c>needed</c>, <c>all</c> or <c>none</c> (which trained methods are kept).</summary>
    public string ArtifactRetention { get; init; } = Orchestrator.Core.Specs.ExecutionSpec.ArtifactsNeeded;

    /// <summary>Value equality, including the metric list's elements.</summary>
    public bool Equals(SweepRecord? other) =>
        other is not null && SweepId == other.SweepId && Name == other.Name && SpecYaml == other.SpecYaml &&
        SpecHash == other.SpecHash && SubmittedAt == other.SubmittedAt && CellCount == other.CellCount &&
        Status == other.Status && MaxAttempts == other.MaxAttempts && LeaseSeconds == other.LeaseSeconds &&
        RequiredDevice == other.RequiredDevice && ArtifactRetention == other.ArtifactRetention && Metrics.SequenceEqual(other.Metrics);

    public override int GetHashCode() => HashCode.Combine(SweepId, SpecHash, SubmittedAt, Status);
}

/// <summary>The values of <see cref="SweepRecord.Status"/>.</summary>
public static class SweepStatus
{
    public const string Active = "active";
    public const string Cancelled = "cancelled";
}

/// <summary>A cell that has no successful result yet, with what the queue needs to (re)build its state.</summary>
/// <param name="Attempts">Attempts started so far (leases granted over the cell's whole life).</param>
/// <param name="LastError">The reason of the last recorded failure, if the stored result is a failure.</param>
/// <param name="AttemptLimit">The highest attempt number the cell may be leased with (0: none recorded; the sweep's max_attempts applies).</param>
public sealed record UnfinishedCell(string CellKey, string CellJson, string Label, int Attempts, string? LastError, int AttemptLimit = 0);

/// <summary>
/// A cell's attempt count and limit. The count only grows (one per lease handed out); a rerun, a resubmission or a released
/// lease raises the limit instead of resetting the count, so attempt numbers are never reused.
/// </summary>
public sealed record AttemptBudget(int Attempts, int Limit);

/// <summary>What the database holds for a cell after a result was offered (<see cref="IResultWriter.WriteResultAsync"/>).</summary>
/// <param name="Written">Whether the offered result was stored (false: the stored one wins, see the upsert rules).</param>
public sealed record StoredResult(bool Written, string Status, int Attempt, string? Error)
{
    public bool Succeeded => Status == CellStatus.Succeeded;
}

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
    DateTimeOffset FinishedAt)
{
    /// <summary>The training curve (<c>Orchestrator.Core.Curves.TrainingCurve</c> JSON); null when the cell trained nothing recordable or failed.</summary>
    public string? CurveJson { get; init; }
}

/// <summary>The values of <see cref="CellResultRecord.Status"/>.</summary>
public static class CellStatus
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

/// <summary>What a paired query compares: two methods (same dataset, split, size, subsample, seed) or two splits (same dataset, method, size, subsample, seed).</summary>
public enum PairedBy
{
    Method,
    Split,
}

/// <summary>
/// A cheap fingerprint of a sweep's results: it changes whenever a result is written (a new cell, a new attempt, a
/// success after a failure) and whenever its metric rows change (a rescore: <paramref name="Metrics"/> rows, summing to
/// <paramref name="MetricSum"/>), so a cache keyed by it never shows scores a rescore replaced.
/// </summary>
public sealed record ResultsVersion(long Results, long AttemptSum, string LastFinishedAt, long Metrics = 0, double MetricSum = 0);

/// <summary>
/// A trained method a cell stored in the artifact store: its content hash (<see cref="Sha256"/>, the folder's
/// <c>ContentHash.OfDirectory</c>), total size and kind (<c>peft-method</c>: a <c>PeftCheckpoint</c> folder).
/// </summary>
public sealed record ArtifactRecord(string CellKey, string Kind, string Sha256, long Bytes, DateTimeOffset CreatedAt);
