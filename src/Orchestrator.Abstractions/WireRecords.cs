namespace Orchestrator.Abstractions;

/// <summary>
/// A unit of queued work: one cell of one sweep. The cell travels as its canonical JSON. A cell of a later stage lists the
/// cells it needs (<see cref="Needs"/>); a cell whose trained method a later cell needs (or every cell, with
/// <c>execution.artifacts: all</c>) has <see cref="KeepArtifact"/> set, and its worker stores the method in the artifact store.
/// </summary>
[GenerateSerializer, Immutable, Alias("orch.cell-work")]
public sealed record CellWork(
    [property: Id(0)] string SweepId,
    [property: Id(1)] string CellKey,
    [property: Id(2)] string CellJson,
    [property: Id(3)] string Label,
    [property: Id(4)] int MaxAttempts,
    [property: Id(5)] int LeaseSeconds,
    [property: Id(6)] IReadOnlyList<string> Metrics,
    [property: Id(7)] string? RequiredDevice = null,
    [property: Id(8)] string? PackGroup = null,
    [property: Id(9)] IReadOnlyList<string>? Needs = null,
    [property: Id(10)] bool KeepArtifact = false)
{
    /// <summary>Keys of the cells that must have succeeded (and stored their trained method) before this one may run.</summary>
    public IReadOnlyList<string> Dependencies => Needs ?? [];

    public TimeSpan LeaseTime => TimeSpan.FromSeconds(LeaseSeconds);
}

/// <summary>
/// What a worker offers when it asks for work. <see cref="RequestId"/>: the same for every retry of one request, so a retry
/// gets the lease the first try was given (whose reply may have been lost) instead of a second one nobody holds.
/// </summary>
[GenerateSerializer, Immutable, Alias("orch.worker-capabilities")]
public sealed record WorkerCapabilities(
    [property: Id(0)] string WorkerId,
    [property: Id(1)] string DeviceKind,
    [property: Id(2)] int DeviceCount,
    [property: Id(3)] long MemoryBytes,
    [property: Id(4)] int FreeSlots,
    [property: Id(5)] string? PackGroup = null,
    [property: Id(6)] string? RequestId = null);

/// <summary>A time-limited claim on a cell. Only the holder of the current lease may complete it.</summary>
[GenerateSerializer, Immutable, Alias("orch.cell-lease")]
public sealed record CellLease(
    [property: Id(0)] string LeaseId,
    [property: Id(1)] CellWork Work,
    [property: Id(2)] int Attempt,
    [property: Id(3)] DateTimeOffset ExpiresAt);

/// <summary>
/// How a leased cell ended: what the database holds for the cell after the worker offered its result (a success stored by
/// any attempt is <see cref="Succeeded"/>, even when this attempt failed). <see cref="CellKey"/> lets the queue accept a
/// success whose lease has expired meanwhile.
/// </summary>
[GenerateSerializer, Immutable, Alias("orch.cell-completion")]
public sealed record CellCompletion(
    [property: Id(0)] string LeaseId,
    [property: Id(1)] bool Succeeded,
    [property: Id(2)] string? Error,
    [property: Id(3)] string? CellKey = null,
    [property: Id(4)] int StoredAttempt = 0);

/// <summary>
/// Counts of a sweep's cells by state. <see cref="Waiting"/>: cells of a later stage whose dependencies have not all finished;
/// <see cref="Blocked"/>: cells with a failed dependency (they run after <c>rerun-failed</c> fixes it).
/// </summary>
[GenerateSerializer, Immutable, Alias("orch.sweep-progress")]
public sealed record SweepProgress(
    [property: Id(0)] string SweepId,
    [property: Id(1)] int Total,
    [property: Id(2)] int Pending,
    [property: Id(3)] int Leased,
    [property: Id(4)] int Done,
    [property: Id(5)] int Failed,
    [property: Id(6)] int Reused,
    [property: Id(7)] int Waiting = 0,
    [property: Id(8)] int Blocked = 0)
{
    /// <summary>Every cell has ended: done, failed, or blocked by a failed dependency.</summary>
    public bool IsComplete => Total > 0 && Done + Failed + Blocked == Total;
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

/// <summary>
/// A sweep to start: the planned cells (already validated), the spec text and its hash, and its run-time policy
/// (<see cref="ArtifactRetention"/>: the spec's <c>execution.artifacts</c>, kept with the sweep so that a rebuilt queue keeps the
/// same trained methods).
/// </summary>
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
    [property: Id(8)] string? RequiredDevice,
    [property: Id(9)] string ArtifactRetention = "needed")
{
    /// <summary>
    /// Whether cells whose stored result is a failure get fresh attempts (true, as <c>run</c> and <c>submit</c> do). False when
    /// the sweep grows after a decision made from those failures (a selection's grid), which a retry must not undo.
    /// </summary>
    [Id(10)]
    public bool RetryFailed { get; init; } = true;

    /// <summary>
    /// With <c>selection:</c>, the grid cells of each candidate of each selecting method (not in <see cref="Cells"/>): the sweep
    /// queues a method's chosen candidate once its selection cells have finished, without the client.
    /// </summary>
    [Id(11)]
    public IReadOnlyList<CandidateGrid> Candidates { get; init; } = [];
}

/// <summary>The grid cells of <see cref="Method"/> with one selection candidate (setting → canonical value) applied.</summary>
[GenerateSerializer, Immutable, Alias("orch.candidate-grid")]
public sealed record CandidateGrid(
    [property: Id(0)] string Method,
    [property: Id(1)] IReadOnlyDictionary<string, string> Candidate,
    [property: Id(2)] IReadOnlyList<CellWork> Cells);

/// <summary>What submitting did: how many cells were queued and how many were already done.</summary>
[GenerateSerializer, Immutable, Alias("orch.submit-result")]
public sealed record SubmitResult(
    [property: Id(0)] string SweepId,
    [property: Id(1)] int Total,
    [property: Id(2)] int Queued,
    [property: Id(3)] int AlreadyDone);

/// <summary>
/// The database aggregate of one metric at one point (dataset, split, method, size) of a sweep: cells expected and failed,
/// and count, sum, sum of squares, min and max over succeeded cells with a value (min/max NaN when N = 0).
/// Statistics (mean, sd, Student-t CI) follow from these; coarser tables merge the sums.
/// </summary>
[GenerateSerializer, Immutable, Alias("orch.result-point")]
public sealed record ResultPoint(
    [property: Id(0)] string Dataset,
    [property: Id(1)] string Split,
    [property: Id(2)] string Method,
    [property: Id(3)] int Size,
    [property: Id(4)] string Metric,
    [property: Id(5)] int Expected,
    [property: Id(6)] int Failed,
    [property: Id(7)] int N,
    [property: Id(8)] double Sum,
    [property: Id(9)] double SumOfSquares,
    [property: Id(10)] double Min,
    [property: Id(11)] double Max);

/// <summary>A sweep's aggregate as cached by its results grain; <see cref="Version"/> increases with every refresh that changed it.</summary>
[GenerateSerializer, Immutable, Alias("orch.sweep-results")]
public sealed record SweepResults(
    [property: Id(0)] string SweepId,
    [property: Id(1)] long Version,
    [property: Id(2)] DateTimeOffset ComputedAt,
    [property: Id(3)] IReadOnlyList<ResultPoint> Points);

/// <summary>Two cells sharing all but the compared attribute (method, or split for the generalization gap); keys are A's.</summary>
[GenerateSerializer, Immutable, Alias("orch.result-pair")]
public sealed record ResultPair(
    [property: Id(0)] string Dataset,
    [property: Id(1)] string Split,
    [property: Id(2)] string Method,
    [property: Id(3)] int Size,
    [property: Id(4)] int Subsample,
    [property: Id(5)] int Seed,
    [property: Id(6)] double A,
    [property: Id(7)] double B);

/// <summary>The pairs of a comparison of <see cref="A"/> against <see cref="B"/> by <see cref="By"/> (<c>method</c> or <c>split</c>).</summary>
[GenerateSerializer, Immutable, Alias("orch.sweep-pairs")]
public sealed record SweepPairs(
    [property: Id(0)] string SweepId,
    [property: Id(1)] string Metric,
    [property: Id(2)] string By,
    [property: Id(3)] string A,
    [property: Id(4)] string B,
    [property: Id(5)] IReadOnlyList<ResultPair> Pairs);
