namespace Orchestrator.Results;

/// <summary>
/// Every actual training of a cell, as the worker that trained it recorded it: started before the first step, finished with
/// how it ended. A cell trained twice (a lease lost mid-run, a worker stopped, an artifact trained again) has two rows, so the
/// number of trainings is read, never inferred from attempts.
/// </summary>
public interface ITrainingRunLog
{
    /// <summary>Records that a worker starts training a cell.</summary>
    Task StartTrainingRunAsync(TrainingRun run, CancellationToken ct = default);

    /// <summary>Records how a training ended (<see cref="TrainingRunOutcome"/>); a run already finished keeps its first outcome.</summary>
    Task FinishTrainingRunAsync(string runId, string outcome, DateTimeOffset finishedAt, CancellationToken ct = default);

    /// <summary>The training runs of the given cells, oldest first.</summary>
    Task<IReadOnlyList<TrainingRun>> GetTrainingRunsAsync(IEnumerable<string> cellKeys, CancellationToken ct = default);
}

/// <summary>One training of one cell. <see cref="Outcome"/> and <see cref="FinishedAt"/> stay null when its worker died or hung mid-run.</summary>
public sealed record TrainingRun(string RunId, string CellKey, int Attempt, string WorkerId, DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt = null, string? Outcome = null);

/// <summary>The values of <see cref="TrainingRun.Outcome"/>.</summary>
public static class TrainingRunOutcome
{
    /// <summary>Trained, decoded and scored.</summary>
    public const string Succeeded = "succeeded";

    /// <summary>Training or scoring threw: the cell's result is a failure.</summary>
    public const string Failed = "failed";

    /// <summary>Stopped before it finished: the lease was lost, the sweep cancelled, or the worker shut down.</summary>
    public const string Stopped = "stopped";
}

/// <summary>
/// The hyper-parameter choices of sweeps with <c>selection:</c>: per method (and size), the values the grid runs with, kept as
/// first made (a later decision from the same stored cells is the same one).
/// </summary>
public interface ISelectionLog
{
    /// <summary>Stores choices not stored yet; an existing choice for the same sweep, method and size is kept.</summary>
    Task SaveSelectionsAsync(IReadOnlyList<StoredSelection> choices, CancellationToken ct = default);

    /// <summary>A sweep's stored choices, by method then size.</summary>
    Task<IReadOnlyList<StoredSelection>> GetSelectionsAsync(string sweepId, CancellationToken ct = default);

    /// <summary>Stores a sweep's candidate grid cells; those stored before are kept.</summary>
    Task SaveCandidateCellsAsync(string sweepId, IReadOnlyList<CandidateCell> cells, CancellationToken ct = default);

    /// <summary>A sweep's candidate grid cells (empty for a sweep whose grid the client queued itself).</summary>
    Task<IReadOnlyList<CandidateCell>> GetCandidateCellsAsync(string sweepId, CancellationToken ct = default);
}

/// <summary>
/// One grid cell of <see cref="Method"/> with the selection candidate <see cref="Candidate"/> (setting → canonical value) applied:
/// it joins its sweep once that candidate is chosen.
/// </summary>
public sealed record CandidateCell(string Method, IReadOnlyDictionary<string, string> Candidate, string CellKey, string CellJson);

/// <summary>
/// One stored choice: the chosen values (setting → canonical value) for <see cref="Method"/> at <see cref="Size"/> (null: every
/// size), the evidence it was made from (<see cref="EvidenceJson"/>, written by whoever chose) and when.
/// </summary>
public sealed record StoredSelection(string SweepId, string Method, int? Size, IReadOnlyDictionary<string, string> Chosen, string EvidenceJson,
    DateTimeOffset DecidedAt);
