namespace Orchestrator.Abstractions;

/// <summary>A unit of queued work: one cell of one sweep. The cell travels as its canonical JSON.</summary>
[GenerateSerializer, Immutable, Alias("orch.cell-work")]
public sealed record CellWork(
    [property: Id(0)] string SweepId,
    [property: Id(1)] string CellKey,
    [property: Id(2)] string CellJson,
    [property: Id(3)] string Label,
    [property: Id(4)] int MaxAttempts,
    [property: Id(5)] int LeaseSeconds,
    [property: Id(6)] IReadOnlyList<string> Metrics,
    [property: Id(7)] string? RequiredDevice = null)
{
    public TimeSpan LeaseTime => TimeSpan.FromSeconds(LeaseSeconds);
}

/// <summary>What a worker offers when it asks for work.</summary>
[GenerateSerializer, Immutable, Alias("orch.worker-capabilities")]
public sealed record WorkerCapabilities(
    [property: Id(0)] string WorkerId,
    [property: Id(1)] string DeviceKind,
    [property: Id(2)] int DeviceCount,
    [property: Id(3)] long MemoryBytes,
    [property: Id(4)] int FreeSlots);

/// <summary>A time-limited claim on a cell. Only the holder of the current lease may complete it.</summary>
[GenerateSerializer, Immutable, Alias("orch.cell-lease")]
public sealed record CellLease(
    [property: Id(0)] string LeaseId,
    [property: Id(1)] CellWork Work,
    [property: Id(2)] int Attempt,
    [property: Id(3)] DateTimeOffset ExpiresAt);

/// <summary>How a leased cell ended.</summary>
[GenerateSerializer, Immutable, Alias("orch.cell-completion")]
public sealed record CellCompletion(
    [property: Id(0)] string LeaseId,
    [property: Id(1)] bool Succeeded,
    [property: Id(2)] string? Error);

/// <summary>Counts of a sweep's cells by state.</summary>
[GenerateSerializer, Immutable, Alias("orch.sweep-progress")]
public sealed record SweepProgress(
    [property: Id(0)] string SweepId,
    [property: Id(1)] int Total,
    [property: Id(2)] int Pending,
    [property: Id(3)] int Leased,
    [property: Id(4)] int Done,
    [property: Id(5)] int Failed,
    [property: Id(6)] int Reused)
{
    public bool IsComplete => Total > 0 && Done + Failed == Total;
}

/// <summary>One cell's place in the queue, for <c>status</c>.</summary>
[GenerateSerializer, Immutable, Alias("orch.cell-state")]
public sealed record CellState(
    [property: Id(0)] string CellKey,
    [property: Id(1)] string Label,
    [property: Id(2)] string State,
    [property: Id(3)] int Attempts,
    [property: Id(4)] string? WorkerId,
    [property: Id(5)] string? LastError);

/// <summary>A sweep to start: the planned cells (already validated), the spec text and its hash.</summary>
[GenerateSerializer, Immutable, Alias("orch.sweep-submission")]
public sealed record SweepSubmission(
    [property: Id(0)] string SweepId,
    [property: Id(1)] string Name,
    [property: Id(2)] string SpecYaml,
    [property: Id(3)] string SpecHash,
    [property: Id(4)] IReadOnlyList<CellWork> Cells,
    [property: Id(5)] int MaxAttempts,
    [property: Id(6)] int LeaseSeconds,
    [property: Id(7)] IReadOnlyList<string> Metrics,
    [property: Id(8)] string? RequiredDevice);

/// <summary>What submitting did: how many cells were queued and how many were already done.</summary>
[GenerateSerializer, Immutable, Alias("orch.submit-result")]
public sealed record SubmitResult(
    [property: Id(0)] string SweepId,
    [property: Id(1)] int Total,
    [property: Id(2)] int Queued,
    [property: Id(3)] int AlreadyDone);
