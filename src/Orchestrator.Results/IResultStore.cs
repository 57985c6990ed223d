namespace Orchestrator.Results;

/// <summary>
/// The results store. Results are keyed by cell alone; sweep membership is a separate table, so a cell shared by
/// several sweeps is trained once. Thread-safe: every operation uses its own connection and transaction.
/// </summary>
public interface IResultStore : IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema (versioned migrations). Idempotent and safe when processes race.</summary>
    Task EnsureSchemaAsync(CancellationToken ct = default);

    /// <summary>
    /// Upserts the sweep, inserts missing cell descriptors, and sets the sweep's membership to exactly
    /// <paramref name="cells"/>. Idempotent.
    /// </summary>
    Task SaveSweepAsync(SweepRecord sweep, IReadOnlyList<CellDescriptor> cells, CancellationToken ct = default);

    /// <summary>The sweep with id <paramref name="idOrName"/>, else the latest submitted sweep with that name, else null.</summary>
    Task<SweepRecord?> FindSweepAsync(string idOrName, CancellationToken ct = default);

    /// <summary>
    /// Writes the result unless the stored one has a higher attempt, or is succeeded while this one failed.
    /// Metrics and outputs are replaced in the same transaction when written. Returns whether it was written.
    /// </summary>
    Task<bool> UpsertResultAsync(CellResultRecord result, CancellationToken ct = default);

    /// <summary>The subset of <paramref name="cellKeys"/> whose stored result is succeeded.</summary>
    Task<IReadOnlySet<string>> GetSucceededKeysAsync(IEnumerable<string> cellKeys, CancellationToken ct = default);

    /// <summary>The sweep's cells with their results (null where none yet); empty when the sweep does not exist.</summary>
    Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> GetSweepCellsAsync(string sweepId, CancellationToken ct = default);

    /// <summary>The highest applied schema migration (0 when the database has no schema yet).</summary>
    Task<int> GetSchemaVersionAsync(CancellationToken ct = default);

    /// <summary>Marks a sweep active or cancelled (<see cref="SweepStatus"/>).</summary>
    Task SetSweepStatusAsync(string sweepId, string status, CancellationToken ct = default);

    /// <summary>Sweeps with the given status (all when null), oldest first.</summary>
    Task<IReadOnlyList<SweepRecord>> GetSweepsAsync(string? status, CancellationToken ct = default);

    /// <summary>The sweep's cells without a successful result, with their recorded attempts and last failure.</summary>
    Task<IReadOnlyList<UnfinishedCell>> GetUnfinishedCellsAsync(string sweepId, CancellationToken ct = default);

    /// <summary>Records how many attempts (leases) each cell has had; a value of 0 resets a cell's count.</summary>
    Task RecordAttemptsAsync(IReadOnlyCollection<KeyValuePair<string, int>> attempts, CancellationToken ct = default);
}
