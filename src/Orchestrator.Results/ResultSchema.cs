using Orchestrator.Clustering;

namespace Orchestrator.Results;

/// <summary>One schema migration: the same change written for each provider.</summary>
internal sealed record Migration(int Version, string Description, string SqliteSql, string PostgresSql);

/// <summary>
/// The results schema as our own, provider-specific SQL scripts, applied in version order by
/// <see cref="ResultStore.EnsureSchemaAsync"/> and recorded in <c>schema_migrations(version, applied_at)</c>.
/// Append new migrations; never edit an applied one.
/// </summary>
internal static class ResultSchema
{
    /// <summary>Key of the Postgres transaction-level advisory lock that serialises migrations across processes.</summary>
    public const long PostgresAdvisoryLockKey = 0x4F52_4348_5253_4C54; // "ORCHRSLT"

    public const string SqliteMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER NOT NULL PRIMARY KEY,
            applied_at TEXT    NOT NULL
        );
        """;

    public const string PostgresMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     NOT NULL PRIMARY KEY,
            applied_at timestamptz NOT NULL
        );
        """;

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "sweeps, cells, sweep_cells, cell_results, cell_metrics, cell_outputs",
            SqliteSql: """
                CREATE TABLE IF NOT EXISTS sweeps (
                    sweep_id     TEXT    NOT NULL PRIMARY KEY,
                    name         TEXT    NOT NULL,
                    spec_yaml    TEXT    NOT NULL,
                    spec_hash    TEXT    NOT NULL,
                    submitted_at TEXT    NOT NULL,
                    cell_count   INTEGER NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ix_sweeps_name_submitted_at ON sweeps (name, submitted_at);

                CREATE TABLE IF NOT EXISTS cells (
                    cell_key  TEXT    NOT NULL PRIMARY KEY,
                    dataset   TEXT    NOT NULL,
                    split     TEXT    NOT NULL,
                    method    TEXT    NOT NULL,
                    size      INTEGER NOT NULL,
                    subsample INTEGER NOT NULL,
                    seed      INTEGER NOT NULL,
                    cell_json TEXT    NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ix_cells_dataset_split_method_size ON cells (dataset, split, method, size);

                CREATE TABLE IF NOT EXISTS sweep_cells (
                    sweep_id TEXT NOT NULL REFERENCES sweeps (sweep_id) ON DELETE CASCADE,
                    cell_key TEXT NOT NULL REFERENCES cells (cell_key),
                    PRIMARY KEY (sweep_id, cell_key)
                );
                CREATE INDEX IF NOT EXISTS ix_sweep_cells_cell_key ON sweep_cells (cell_key);

                CREATE TABLE IF NOT EXISTS cell_results (
                    cell_key          TEXT    NOT NULL PRIMARY KEY,
                    attempt           INTEGER NOT NULL,
                    status            TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
                    error             TEXT    NULL,
                    worker_id         TEXT    NOT NULL,
                    device            TEXT    NOT NULL,
                    wall_seconds      REAL    NOT NULL,
                    peak_memory_bytes INTEGER NOT NULL,
                    provenance_json   TEXT    NOT NULL,
                    finished_at       TEXT    NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ix_cell_results_status ON cell_results (status);

                CREATE TABLE IF NOT EXISTS cell_metrics (
                    cell_key TEXT NOT NULL REFERENCES cell_results (cell_key) ON DELETE CASCADE,
                    metric   TEXT NOT NULL,
                    value    REAL NULL,
                    PRIMARY KEY (cell_key, metric)
                );
                CREATE INDEX IF NOT EXISTS ix_cell_metrics_metric ON cell_metrics (metric);

                CREATE TABLE IF NOT EXISTS cell_outputs (
                    cell_key     TEXT NOT NULL PRIMARY KEY REFERENCES cell_results (cell_key) ON DELETE CASCADE,
                    outputs_json TEXT NOT NULL
                );
                """,
            PostgresSql: """
                CREATE TABLE IF NOT EXISTS sweeps (
                    sweep_id     text        NOT NULL PRIMARY KEY,
                    name         text        NOT NULL,
                    spec_yaml    text        NOT NULL,
                    spec_hash    text        NOT NULL,
                    submitted_at timestamptz NOT NULL,
                    cell_count   integer     NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ix_sweeps_name_submitted_at ON sweeps (name, submitted_at);

                CREATE TABLE IF NOT EXISTS cells (
                    cell_key  text    NOT NULL PRIMARY KEY,
                    dataset   text    NOT NULL,
                    split     text    NOT NULL,
                    method    text    NOT NULL,
                    size      integer NOT NULL,
                    subsample integer NOT NULL,
                    seed      integer NOT NULL,
                    cell_json text    NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ix_cells_dataset_split_method_size ON cells (dataset, split, method, size);

                CREATE TABLE IF NOT EXISTS sweep_cells (
                    sweep_id text NOT NULL REFERENCES sweeps (sweep_id) ON DELETE CASCADE,
                    cell_key text NOT NULL REFERENCES cells (cell_key),
                    PRIMARY KEY (sweep_id, cell_key)
                );
                CREATE INDEX IF NOT EXISTS ix_sweep_cells_cell_key ON sweep_cells (cell_key);

                CREATE TABLE IF NOT EXISTS cell_results (
                    cell_key          text             NOT NULL PRIMARY KEY,
                    attempt           integer          NOT NULL,
                    status            text             NOT NULL CHECK (status IN ('succeeded', 'failed')),
                    error             text             NULL,
                    worker_id         text             NOT NULL,
                    device            text             NOT NULL,
                    wall_seconds      double precision NOT NULL,
                    peak_memory_bytes bigint           NOT NULL,
                    provenance_json   text             NOT NULL,
                    finished_at       timestamptz      NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ix_cell_results_status ON cell_results (status);

                CREATE TABLE IF NOT EXISTS cell_metrics (
                    cell_key text             NOT NULL REFERENCES cell_results (cell_key) ON DELETE CASCADE,
                    metric   text             NOT NULL,
                    value    double precision NULL,
                    PRIMARY KEY (cell_key, metric)
                );
                CREATE INDEX IF NOT EXISTS ix_cell_metrics_metric ON cell_metrics (metric);

                CREATE TABLE IF NOT EXISTS cell_outputs (
                    cell_key     text NOT NULL PRIMARY KEY REFERENCES cell_results (cell_key) ON DELETE CASCADE,
                    outputs_json text NOT NULL
                );
                """),
        new(2, "sweep run settings and status; cell attempt counters for the lease queue",
            SqliteSql: """
                ALTER TABLE sweeps ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
                ALTER TABLE sweeps ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3;
                ALTER TABLE sweeps ADD COLUMN lease_seconds INTEGER NOT NULL DEFAULT 600;
                ALTER TABLE sweeps ADD COLUMN metrics_json TEXT NOT NULL DEFAULT '["bleu"]';
                ALTER TABLE sweeps ADD COLUMN required_device TEXT NULL;
                CREATE INDEX IF NOT EXISTS ix_sweeps_status ON sweeps (status);
                CREATE TABLE IF NOT EXISTS cell_attempts (
                    cell_key   TEXT    NOT NULL PRIMARY KEY,
                    attempts   INTEGER NOT NULL,
                    updated_at TEXT    NOT NULL
                );
                """,
            PostgresSql: """
                ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'active';
                ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS max_attempts integer NOT NULL DEFAULT 3;
                ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS lease_seconds integer NOT NULL DEFAULT 600;
                ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS metrics_json text NOT NULL DEFAULT '["bleu"]';
                ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS required_device text NULL;
                CREATE INDEX IF NOT EXISTS ix_sweeps_status ON sweeps (status);
                CREATE TABLE IF NOT EXISTS cell_attempts (
                    cell_key   text        NOT NULL PRIMARY KEY,
                    attempts   integer     NOT NULL,
                    updated_at timestamptz NOT NULL
                );
                """),
        new(3, "Orleans ADO.NET clustering (membership) tables and queries (PostgreSQL only)",
            SqliteSql: "SELECT 1;",
            PostgresSql: OrleansClusteringSchema.PostgresSql),
        new(4, "covering indexes for the aggregate, paired and version queries of the results grain",
            SqliteSql: AggregateIndexes,
            PostgresSql: AggregateIndexes),
        new(5, "artifact index: the trained method each cell stored in the content-addressed artifact store",
            SqliteSql: ArtifactsTable,
            PostgresSql: ArtifactsTable.Replace("INTEGER", "bigint", StringComparison.Ordinal)),
        new(6, "the sweep's artifact retention (execution.artifacts), so that a rebuilt queue keeps the same trained methods",
            SqliteSql: "ALTER TABLE sweeps ADD COLUMN artifacts TEXT NOT NULL DEFAULT 'needed';",
            PostgresSql: "ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS artifacts text NOT NULL DEFAULT 'needed';"),
        new(7, "training curves: per cell the subsampled training loss, the dev losses and the kept step (TrainingCurve JSON)",
            SqliteSql: CurvesTable,
            PostgresSql: CurvesTable),
        new(8, "each cell's attempt limit (its budget: attempts stay monotonic, a rerun raises the limit instead of resetting the count)",
            SqliteSql: "ALTER TABLE cell_attempts ADD COLUMN attempt_limit INTEGER NOT NULL DEFAULT 0;\n" + LegacyAttemptLimits,
            PostgresSql: "ALTER TABLE cell_attempts ADD COLUMN IF NOT EXISTS attempt_limit integer NOT NULL DEFAULT 0;\n" + LegacyAttemptLimits),
        new(9, "training runs: one row per actual training of a cell (worker, attempt, start, end, how it ended)",
            SqliteSql: TrainingRunsTable,
            PostgresSql: TrainingRunsTable),
        new(10, "selection choices: per sweep, method and size, the values chosen from the selection cells and their evidence",
            SqliteSql: SelectionsTable,
            PostgresSql: SelectionsTable),
        new(11, "candidate grids: per sweep, the grid cells of each selection candidate, queued once that candidate is chosen",
            SqliteSql: CandidateCellsTable,
            PostgresSql: CandidateCellsTable),
    ];

    /// <summary>
    /// Migration 11: a sweep's grid cells per selection candidate (planned by the client, which has the data files), so that the
    /// coordinator queues the chosen candidate's cells without the client; removed with its sweep.
    /// </summary>
    private const string CandidateCellsTable = """
        CREATE TABLE IF NOT EXISTS sweep_candidate_cells (
            sweep_id       TEXT NOT NULL REFERENCES sweeps (sweep_id) ON DELETE CASCADE,
            method         TEXT NOT NULL,
            candidate_json TEXT NOT NULL,
            cell_key       TEXT NOT NULL,
            cell_json      TEXT NOT NULL,
            PRIMARY KEY (sweep_id, method, candidate_json, cell_key)
        );
        """;

    /// <summary>
    /// Migration 10: the hyper-parameter choice a sweep's grid ran with, written once when it is made (size 0: one choice for
    /// every size); removed with its sweep.
    /// </summary>
    private const string SelectionsTable = """
        CREATE TABLE IF NOT EXISTS sweep_selections (
            sweep_id      TEXT    NOT NULL REFERENCES sweeps (sweep_id) ON DELETE CASCADE,
            method        TEXT    NOT NULL,
            size          INTEGER NOT NULL,
            chosen_json   TEXT    NOT NULL,
            evidence_json TEXT    NOT NULL,
            decided_at    TEXT    NOT NULL,
            PRIMARY KEY (sweep_id, method, size)
        );
        """;

    /// <summary>Migration 9: written by workers, read by tests and <c>export</c> to count how many times each cell really trained.</summary>
    private const string TrainingRunsTable = """
        CREATE TABLE IF NOT EXISTS training_runs (
            run_id      TEXT    NOT NULL PRIMARY KEY,
            cell_key    TEXT    NOT NULL,
            attempt     INTEGER NOT NULL,
            worker_id   TEXT    NOT NULL,
            started_at  TEXT    NOT NULL,
            finished_at TEXT,
            outcome     TEXT
        );
        CREATE INDEX IF NOT EXISTS ix_training_runs_cell ON training_runs (cell_key);
        """;

    /// <summary>Migration 7: one row per result that has a training curve, replaced with the result and deleted with it.</summary>
    private const string CurvesTable = """
        CREATE TABLE IF NOT EXISTS cell_curves (
            cell_key   TEXT NOT NULL PRIMARY KEY REFERENCES cell_results (cell_key) ON DELETE CASCADE,
            curve_json TEXT NOT NULL
        );
        """;

    /// <summary>Migration 8: counts recorded before limits existed were checked against their sweeps' max_attempts.</summary>
    private const string LegacyAttemptLimits = """
        UPDATE cell_attempts SET attempt_limit = coalesce(
            (SELECT max(s.max_attempts) FROM sweep_cells sc JOIN sweeps s ON s.sweep_id = sc.sweep_id WHERE sc.cell_key = cell_attempts.cell_key), 3)
        WHERE attempt_limit = 0;
        """;

    /// <summary>Migration 5: one row per cell with a stored artifact (its content hash, size and kind); the files live in the artifact store.</summary>
    private const string ArtifactsTable = """
        CREATE TABLE IF NOT EXISTS artifacts (
            cell_key   TEXT    NOT NULL PRIMARY KEY,
            kind       TEXT    NOT NULL,
            sha256     TEXT    NOT NULL,
            bytes      INTEGER NOT NULL,
            created_at TEXT    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ix_artifacts_sha256 ON artifacts (sha256);
        """;

    /// <summary>
    /// Migration 4 (identical on both providers). The aggregates join sweep_cells → cells → cell_results → cell_metrics on
    /// cell_key and group by (dataset, split, method, size, metric): these indexes let every join be an index-only lookup
    /// (cell_json and provenance_json, the large columns, are never read), and let the paired query find the partner cell
    /// by (dataset, size, subsample, seed, split, method).
    /// </summary>
    private const string AggregateIndexes = """
        CREATE INDEX IF NOT EXISTS ix_cells_key_point ON cells (cell_key, dataset, split, method, size, subsample, seed);
        CREATE INDEX IF NOT EXISTS ix_cells_pairing ON cells (dataset, size, subsample, seed, split, method);
        CREATE INDEX IF NOT EXISTS ix_cell_results_key_status ON cell_results (cell_key, status, attempt, finished_at);
        CREATE INDEX IF NOT EXISTS ix_cell_metrics_key_metric_value ON cell_metrics (cell_key, metric, value);
        """;

    public static int LatestVersion => Migrations[^1].Version;
}
