using Orchestrator.Core.Aggregation;

namespace Orchestrator.Results;

/// <summary>
/// The results store: every role below, on one database. Results are keyed by cell alone; sweep membership is a separate
/// table, so a cell shared by several sweeps is trained once. Thread-safe: every operation uses its own connection and
/// transaction. Code that needs one role takes that role's interface.
/// </summary>
public interface IResultStore : ISweepStore, IAttemptLedger, IResultWriter, IArtifactIndex, IResultQueries, ITrainingRunLog, ISelectionLog, IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema (versioned migrations). Idempotent and safe when processes race.</summary>
    Task EnsureSchemaAsync(CancellationToken ct = default);

    /// <summary>The highest applied schema migration (0 when the database has no schema yet).</summary>
    Task<int> GetSchemaVersionAsync(CancellationToken ct = default);
}

/// <summary>Sweeps and their cells.</summary>
public interface ISweepStore
{
    /// <summary>
    /// Upserts the sweep, inserts missing cell descriptors, and sets the sweep's membership to exactly
    /// <paramref name="cells"/>. Idempotent.
    /// </summary>
    Task SaveSweepAsync(SweepRecord sweep, IReadOnlyList<CellDescriptor> cells, CancellationToken ct = default);

    /// <summary>The sweep with id <paramref name="idOrName"/>, else the latest submitted sweep with that name, else null.</summary>
    Task<SweepRecord?> FindSweepAsync(string idOrName, CancellationToken ct = default);

    /// <summary>Marks a sweep active or cancelled (<see cref="SweepStatus"/>).</summary>
    Task SetSweepStatusAsync(string sweepId, string status, CancellationToken ct = default);

    /// <summary>Sweeps with the given status (all when null), oldest first.</summary>
    Task<IReadOnlyList<SweepRecord>> GetSweepsAsync(string? status, CancellationToken ct = default);

    /// <summary>The sweep's cells with their results (null where none yet); empty when the sweep does not exist.</summary>
    Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> GetSweepCellsAsync(string sweepId, CancellationToken ct = default);

    /// <summary>
    /// As <see cref="GetSweepCellsAsync(string, CancellationToken)"/>; without <paramref name="withOutputs"/> each result's
    /// <see cref="CellResultRecord.Outputs"/> is left empty (not read), for views that count and aggregate cells: the decoded outputs
    /// are most of a sweep's stored bytes.
    /// </summary>
    Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> GetSweepCellsAsync(string sweepId, bool withOutputs, CancellationToken ct = default);

    /// <summary>The decoded outputs stored with the cell's current result (empty when none), without reading the rest of its sweep.</summary>
    Task<IReadOnlyList<string>> GetOutputsAsync(string cellKey, CancellationToken ct = default);

    /// <summary>The training curve stored with the cell's current result (<see cref="CellResultRecord.CurveJson"/>), or null.</summary>
    Task<string?> GetCurveAsync(string cellKey, CancellationToken ct = default);
}

/// <summary>
/// What the lease queue needs from the database, its source of truth after any restart: the cells still to do and each
/// cell's attempt count and limit (<see cref="AttemptBudget"/>). Counts only grow, and a count is written before the lease
/// that uses it is handed out, so an attempt number is never issued twice, even when the coordinator dies right after.
/// </summary>
public interface IAttemptLedger
{
    /// <summary>The sweep's cells without a successful result, with their attempt counts, limits and last failure.</summary>
    Task<IReadOnlyList<UnfinishedCell>> GetUnfinishedCellsAsync(string sweepId, CancellationToken ct = default);

    /// <summary>
    /// Counts one more attempt of the cell (one statement, <c>attempts = attempts + 1 … RETURNING</c>) and returns the new
    /// count: the attempt number of the lease about to be handed out. The stored limit becomes at least <paramref name="limit"/>.
    /// </summary>
    Task<int> BeginAttemptAsync(string cellKey, int limit, CancellationToken ct = default);

    /// <summary>
    /// Gives each cell <paramref name="attempts"/> more attempts on top of its current count (limit = count + attempts),
    /// never lowering a limit or touching a count. With <paramref name="includeExhausted"/> false, a cell that has used its
    /// budget keeps it (it stays failed; <c>resume</c>); true also revives those (<c>rerun-failed</c>, a resubmission, <c>run</c>).
    /// Returns every cell's count and limit afterwards.
    /// </summary>
    Task<IReadOnlyDictionary<string, AttemptBudget>> GrantAttemptsAsync(
        IReadOnlyCollection<string> cellKeys, int attempts, bool includeExhausted, CancellationToken ct = default);

    /// <summary>Raises the cell's attempt limit to at least <paramref name="limit"/> (a released lease gives its attempt back).</summary>
    Task RaiseAttemptLimitAsync(string cellKey, int limit, CancellationToken ct = default);
}

/// <summary>Result rows: writing them under the upsert rules, and which cells have succeeded.</summary>
public interface IResultWriter
{
    /// <summary>
    /// Offers a result; the upsert rules decide whether it is stored: a success replaces a stored failure whatever the attempt
    /// numbers; a failure never replaces a success; of two successes the first stored is kept (later ones are not written,
    /// so the numbers readers have seen never change under them); of two failures the one with the higher (or equal) attempt
    /// wins. Metrics and outputs are replaced in the same transaction when written. Returns whether it was written.
    /// </summary>
    Task<bool> UpsertResultAsync(CellResultRecord result, CancellationToken ct = default);

    /// <summary>
    /// <see cref="UpsertResultAsync"/>, then what the database holds for the cell afterwards (in the same transaction):
    /// what a worker reports to the queue, so that the queue follows the database rather than the worker's own outcome.
    /// </summary>
    Task<StoredResult> WriteResultAsync(CellResultRecord result, CancellationToken ct = default);

    /// <summary>The subset of <paramref name="cellKeys"/> whose stored result is succeeded.</summary>
    Task<IReadOnlySet<string>> GetSucceededKeysAsync(IEnumerable<string> cellKeys, CancellationToken ct = default);

    /// <summary>
    /// Upserts metric rows of a succeeded result whose stored attempt is <paramref name="attempt"/>, leaving the result row
    /// (attempt, status, provenance, outputs) unchanged; other metrics of the cell are kept. False (nothing written) when
    /// the cell has no succeeded result with that attempt. Used by <c>rescore</c>.
    /// </summary>
    Task<bool> UpdateMetricsAsync(string cellKey, int attempt, IReadOnlyDictionary<string, double> metrics, CancellationToken ct = default);
}

/// <summary>The artifact index (the files themselves: ArtifactStore).</summary>
public interface IArtifactIndex
{
    /// <summary>Records (or replaces) the artifact a cell stored.</summary>
    Task RecordArtifactAsync(ArtifactRecord artifact, CancellationToken ct = default);

    /// <summary>The artifacts of those of <paramref name="cellKeys"/> that stored one, by cell key.</summary>
    Task<IReadOnlyDictionary<string, ArtifactRecord>> GetArtifactsAsync(IEnumerable<string> cellKeys, CancellationToken ct = default);

    /// <summary>Every indexed artifact, oldest first.</summary>
    Task<IReadOnlyList<ArtifactRecord>> ListArtifactsAsync(CancellationToken ct = default);

    /// <summary>Removes index rows (the files are the artifact store's business).</summary>
    Task DeleteArtifactRecordsAsync(IReadOnlyCollection<string> cellKeys, CancellationToken ct = default);

    /// <summary>The keys of every cell that some stored cell needs (its <c>needs</c>): their artifacts must be kept.</summary>
    Task<IReadOnlySet<string>> GetNeededCellKeysAsync(CancellationToken ct = default);
}

/// <summary>Aggregates over a sweep's results, computed in the database.</summary>
public interface IResultQueries
{
    /// <summary>
    /// Per point (dataset, split, method, size) of the sweep and per metric (<paramref name="metric"/>, or every metric that has
    /// values; the spec's metrics when nothing has finished yet): the cells expected (all the sweep's cells at the point),
    /// those failed, and count, sum, sum of squares, min and max of the metric over succeeded cells with a value.
    /// A point with no values has N = 0 (min and max NaN). Computed with SQL GROUP BY; ordered by metric, dataset, split, method, size.
    /// </summary>
    Task<IReadOnlyList<PointSums>> GetPointSumsAsync(string sweepId, string? metric = null, CancellationToken ct = default);

    /// <summary>
    /// Pairs of succeeded cells of the sweep with a value of <paramref name="metric"/>: <paramref name="a"/> and <paramref name="b"/>
    /// are two methods (<see cref="PairedBy.Method"/>: same dataset, split, size, subsample, seed) or two splits
    /// (<see cref="PairedBy.Split"/>: same dataset, method, size, subsample, seed). The keys returned are the A cell's.
    /// </summary>
    Task<IReadOnlyList<PairedObservation>> GetPairsAsync(string sweepId, string metric, PairedBy by, string a, string b, CancellationToken ct = default);

    /// <summary>A fingerprint of the sweep's results that changes whenever a result is written (see <see cref="ResultsVersion"/>).</summary>
    Task<ResultsVersion> GetResultsVersionAsync(string sweepId, CancellationToken ct = default);
}
