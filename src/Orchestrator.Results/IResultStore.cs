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
}
