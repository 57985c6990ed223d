using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using Polly;
using Polly.Retry;

namespace Orchestrator.Results;

internal enum ResultStoreProvider
{
    Sqlite,
    Postgres,
}

/// <summary>
/// <see cref="IResultStore"/> on EF Core for SQLite and PostgreSQL. Every operation creates its own
/// <see cref="ResultsDbContext"/>, connection and transaction, so one instance can be used concurrently.
/// Writes are parameterised SQL that is valid on both providers (<c>INSERT … ON CONFLICT</c>); reads are LINQ.
/// Transient failures (SQLite busy/locked, Npgsql transient errors, serialization failures, deadlocks) retry the
/// whole operation, which is idempotent.
/// </summary>
internal sealed partial class ResultStore : IResultStore
{
    private const int MaxParametersPerStatement = 900; // below SQLite's historical 999 limit
    private const int KeysPerQuery = 500;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    private readonly DbContextOptions<ResultsDbContext> _options;
    private readonly string _connectionString;
    private readonly ResiliencePipeline _retry;
    private int _disposed;

    private ResultStore(ResultStoreProvider provider, string connectionString, DbContextOptions<ResultsDbContext> options)
    {
        Provider = provider;
        _connectionString = connectionString;
        _options = options;
        _retry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                MaxRetryAttempts = 5,
                Delay = TimeSpan.FromMilliseconds(100),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .Build();
    }

    public ResultStoreProvider Provider { get; }

    public static ResultStore ForSqlite(string filePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        var fullPath = Path.GetFullPath(filePath);
        var directory = Path.GetDirectoryName(fullPath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30, // Microsoft.Data.Sqlite also retries SQLITE_BUSY until this command timeout
        }.ToString();

        var options = new DbContextOptionsBuilder<ResultsDbContext>()
            .UseSqlite(connectionString)
            .AddInterceptors(SqliteConnectionSetup.Instance)
            .UseQueryTrackingBehavior(QueryTrackingBehavior.NoTracking)
            .Options;
        return new ResultStore(ResultStoreProvider.Sqlite, connectionString, options);
    }

    public static ResultStore ForPostgres(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var normalized = new NpgsqlConnectionStringBuilder(connectionString).ConnectionString;
        var options = new DbContextOptionsBuilder<ResultsDbContext>()
            .UseNpgsql(normalized)
            .UseQueryTrackingBehavior(QueryTrackingBehavior.NoTracking)
            .Options;
        return new ResultStore(ResultStoreProvider.Postgres, normalized, options);
    }

    // ---------------------------------------------------------------- schema

    public Task EnsureSchemaAsync(CancellationToken ct = default) =>
        RunAsync(async token =>
        {
            await using var db = new ResultsDbContext(_options);
            await db.Database.OpenConnectionAsync(token).ConfigureAwait(false);
            var connection = db.Database.GetDbConnection();

            if (Provider == ResultStoreProvider.Sqlite)
            {
                // Persistent in the file; must run outside a transaction.
                await ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL;", token).ConfigureAwait(false);
            }

            await using var transaction = await db.Database.BeginTransactionAsync(token).ConfigureAwait(false);
            var tx = transaction.GetDbTransaction();
            if (Provider == ResultStoreProvider.Postgres)
            {
                // Serialises concurrent migrators; released at commit. (SQLite's BEGIN IMMEDIATE already does.)
                await ExecuteAsync(connection, tx, "SELECT pg_advisory_xact_lock(@key)", token,
                    ("key", ResultSchema.PostgresAdvisoryLockKey)).ConfigureAwait(false);
            }

            await ExecuteAsync(connection, tx,
                Provider == ResultStoreProvider.Sqlite ? ResultSchema.SqliteMigrationsTable : ResultSchema.PostgresMigrationsTable,
                token).ConfigureAwait(false);

            var applied = new HashSet<int>();
            await using (var command = Command(connection, tx, "SELECT version FROM schema_migrations"))
            await using (var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    applied.Add(Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture));
                }
            }

            foreach (var migration in ResultSchema.Migrations.OrderBy(m => m.Version))
            {
                if (applied.Contains(migration.Version))
                {
                    continue;
                }

                var sql = Provider == ResultStoreProvider.Sqlite ? migration.SqliteSql : migration.PostgresSql;
                await ExecuteAsync(connection, tx, sql, token).ConfigureAwait(false);
                await ExecuteAsync(connection, tx,
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (@version, @applied_at)", token,
                    ("version", migration.Version), ("applied_at", Timestamp(DateTimeOffset.UtcNow))).ConfigureAwait(false);
            }

            if (Provider == ResultStoreProvider.Postgres)
            {
                await ExecuteAsync(connection, tx, SchemaPrivileges.PostgresRevokeWrites, token).ConfigureAwait(false);
            }

            await transaction.CommitAsync(token).ConfigureAwait(false);
            return true;
        }, ct);

    // ---------------------------------------------------------------- writes

    public Task SaveSweepAsync(SweepRecord sweep, IReadOnlyList<CellDescriptor> cells, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        ArgumentNullException.ThrowIfNull(cells);
        ArgumentException.ThrowIfNullOrWhiteSpace(sweep.SweepId);
        foreach (var cell in cells)
        {
            ArgumentNullException.ThrowIfNull(cell);
            ArgumentException.ThrowIfNullOrWhiteSpace(cell.CellKey);
        }

        var distinctCells = cells.DistinctBy(c => c.CellKey, StringComparer.Ordinal).ToList();

        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            await ExecuteAsync(connection, tx, """
                INSERT INTO sweeps (sweep_id, name, spec_yaml, spec_hash, submitted_at, cell_count,
                                    status, max_attempts, lease_seconds, metrics_json, required_device, artifacts)
                VALUES (@sweep_id, @name, @spec_yaml, @spec_hash, @submitted_at, @cell_count,
                        @status, @max_attempts, @lease_seconds, @metrics_json, @required_device, @artifacts)
                ON CONFLICT (sweep_id) DO UPDATE SET
                    name = excluded.name, spec_yaml = excluded.spec_yaml, spec_hash = excluded.spec_hash,
                    submitted_at = excluded.submitted_at, cell_count = excluded.cell_count, status = excluded.status,
                    max_attempts = excluded.max_attempts, lease_seconds = excluded.lease_seconds,
                    metrics_json = excluded.metrics_json, required_device = excluded.required_device,
                    artifacts = excluded.artifacts
                """, token,
                ("sweep_id", sweep.SweepId), ("name", sweep.Name), ("spec_yaml", sweep.SpecYaml),
                ("spec_hash", sweep.SpecHash), ("submitted_at", Timestamp(sweep.SubmittedAt)),
                ("cell_count", sweep.CellCount), ("status", sweep.Status), ("max_attempts", sweep.MaxAttempts),
                ("lease_seconds", sweep.LeaseSeconds), ("metrics_json", JsonSerializer.Serialize(sweep.Metrics, Json)),
                ("required_device", sweep.RequiredDevice), ("artifacts", sweep.ArtifactRetention)).ConfigureAwait(false);

            // A cell key is a content hash: an existing descriptor is identical, keep it.
            await InsertRowsAsync(connection, tx,
                "INSERT INTO cells (cell_key, dataset, split, method, size, subsample, seed, cell_json) VALUES ",
                " ON CONFLICT (cell_key) DO NOTHING",
                distinctCells.Select(c => new object?[]
                    { c.CellKey, c.Dataset, c.Split, c.Method, c.Size, c.Subsample, c.Seed, c.CellJson }),
                columns: 8, token).ConfigureAwait(false);

            // Membership becomes exactly the given cells.
            await ExecuteAsync(connection, tx, "DELETE FROM sweep_cells WHERE sweep_id = @sweep_id", token,
                ("sweep_id", sweep.SweepId)).ConfigureAwait(false);
            await InsertRowsAsync(connection, tx,
                "INSERT INTO sweep_cells (sweep_id, cell_key) VALUES ",
                " ON CONFLICT (sweep_id, cell_key) DO NOTHING",
                distinctCells.Select(c => new object?[] { sweep.SweepId, c.CellKey }),
                columns: 2, token).ConfigureAwait(false);
            return true;
        }, ct);
    }

    public async Task<bool> UpsertResultAsync(CellResultRecord result, CancellationToken ct = default) =>
        (await WriteResultAsync(result, ct).ConfigureAwait(false)).Written;

    public Task<StoredResult> WriteResultAsync(CellResultRecord result, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrWhiteSpace(result.CellKey);
        ArgumentNullException.ThrowIfNull(result.Metrics);
        ArgumentNullException.ThrowIfNull(result.Outputs);
        if (result.Status is not (CellStatus.Succeeded or CellStatus.Failed))
        {
            throw new ArgumentException(
                $"Status must be '{CellStatus.Succeeded}' or '{CellStatus.Failed}', not '{result.Status}'.", nameof(result));
        }

        var metrics = result.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal).ToList();
        var outputsJson = JsonSerializer.Serialize(result.Outputs, Json);

        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            var written = await ExecuteAsync(connection, tx, """
                INSERT INTO cell_results (cell_key, attempt, status, error, worker_id, device, wall_seconds,
                                          peak_memory_bytes, provenance_json, finished_at)
                VALUES (@cell_key, @attempt, @status, @error, @worker_id, @device, @wall_seconds,
                        @peak_memory_bytes, @provenance_json, @finished_at)
                ON CONFLICT (cell_key) DO UPDATE SET
                    attempt = excluded.attempt, status = excluded.status, error = excluded.error,
                    worker_id = excluded.worker_id, device = excluded.device, wall_seconds = excluded.wall_seconds,
                    peak_memory_bytes = excluded.peak_memory_bytes, provenance_json = excluded.provenance_json,
                    finished_at = excluded.finished_at
                WHERE cell_results.status = 'failed'
                  AND (excluded.status = 'succeeded' OR cell_results.attempt <= excluded.attempt)
                """, token,
                ("cell_key", result.CellKey), ("attempt", result.Attempt), ("status", result.Status),
                ("error", result.Error), ("worker_id", result.WorkerId), ("device", result.Device),
                ("wall_seconds", result.WallSeconds), ("peak_memory_bytes", result.PeakMemoryBytes),
                ("provenance_json", result.ProvenanceJson), ("finished_at", Timestamp(result.FinishedAt))).ConfigureAwait(false);
            if (written == 0)
            {
                // A success is stored (the first one is kept), or a failure of a later attempt: leave metrics and outputs alone.
                await using var read = Command(connection, tx, "SELECT status, attempt, error FROM cell_results WHERE cell_key = @cell_key",
                    ("cell_key", result.CellKey));
                await using var reader = await read.ExecuteReaderAsync(token).ConfigureAwait(false);
                if (!await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    throw new InvalidOperationException($"the result of cell {result.CellKey} was neither written nor found");
                }

                return new StoredResult(false, reader.GetString(0), Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture),
                    reader.IsDBNull(2) ? null : reader.GetString(2));
            }

            await ExecuteAsync(connection, tx, "DELETE FROM cell_metrics WHERE cell_key = @cell_key", token,
                ("cell_key", result.CellKey)).ConfigureAwait(false);
            await InsertRowsAsync(connection, tx,
                "INSERT INTO cell_metrics (cell_key, metric, value) VALUES ", "",
                metrics.Select(m => new object?[] { result.CellKey, m.Key, double.IsNaN(m.Value) ? null : m.Value }),
                columns: 3, token).ConfigureAwait(false);
            await ExecuteAsync(connection, tx, """
                INSERT INTO cell_outputs (cell_key, outputs_json) VALUES (@cell_key, @outputs_json)
                ON CONFLICT (cell_key) DO UPDATE SET outputs_json = excluded.outputs_json
                """, token,
                ("cell_key", result.CellKey), ("outputs_json", outputsJson)).ConfigureAwait(false);

            // The curve belongs to the attempt just written: an attempt without one must not show an older attempt's.
            if (result.CurveJson is null)
            {
                await ExecuteAsync(connection, tx, "DELETE FROM cell_curves WHERE cell_key = @cell_key", token,
                    ("cell_key", result.CellKey)).ConfigureAwait(false);
            }
            else
            {
                await ExecuteAsync(connection, tx, """
                    INSERT INTO cell_curves (cell_key, curve_json) VALUES (@cell_key, @curve_json)
                    ON CONFLICT (cell_key) DO UPDATE SET curve_json = excluded.curve_json
                    """, token,
                    ("cell_key", result.CellKey), ("curve_json", result.CurveJson)).ConfigureAwait(false);
            }

            return new StoredResult(true, result.Status, result.Attempt, result.Error);
        }, ct);
    }

    // ---------------------------------------------------------------- reads

    public Task<SweepRecord?> FindSweepAsync(string idOrName, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(idOrName);
        return InTransactionAsync(write: false, async (_, _, db, token) =>
        {
            var byId = await db.Sweeps.Where(s => s.SweepId == idOrName).FirstOrDefaultAsync(token).ConfigureAwait(false);
            if (byId is not null)
            {
                return ToRecord(byId);
            }

            // SQLite cannot ORDER BY a DateTimeOffset in SQL; sweeps sharing a name are few, so order here.
            var byName = await db.Sweeps.Where(s => s.Name == idOrName).ToListAsync(token).ConfigureAwait(false);
            var latest = byName
                .OrderByDescending(s => s.SubmittedAt)
                .ThenByDescending(s => s.SweepId, StringComparer.Ordinal)
                .FirstOrDefault();
            return latest is null ? null : ToRecord(latest);
        }, ct);
    }

    public async Task<IReadOnlySet<string>> GetSucceededKeysAsync(IEnumerable<string> cellKeys, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(cellKeys);
        var keys = cellKeys.Where(k => k is not null).Distinct(StringComparer.Ordinal).ToList();
        if (keys.Count == 0)
        {
            return new HashSet<string>(StringComparer.Ordinal);
        }

        return await InTransactionAsync(write: false, async (_, _, db, token) =>
        {
            var succeeded = new HashSet<string>(StringComparer.Ordinal);
            foreach (var chunk in keys.Chunk(KeysPerQuery))
            {
                var found = await db.CellResults
                    .Where(r => chunk.Contains(r.CellKey) && r.Status == CellStatus.Succeeded)
                    .Select(r => r.CellKey)
                    .ToListAsync(token).ConfigureAwait(false);
                succeeded.UnionWith(found);
            }

            return (IReadOnlySet<string>)succeeded;
        }, ct).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> GetSweepCellsAsync(
        string sweepId, CancellationToken ct = default) => GetSweepCellsAsync(sweepId, withOutputs: true, ct);

    public Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> GetSweepCellsAsync(
        string sweepId, bool withOutputs, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        return InTransactionAsync(write: false, async (_, _, db, token) =>
        {
            var members = db.SweepCells.Where(sc => sc.SweepId == sweepId);

            var cells = await members
                .Join(db.Cells, sc => sc.CellKey, c => c.CellKey, (_, c) => c)
                .ToListAsync(token).ConfigureAwait(false);
            var results = await members
                .Join(db.CellResults, sc => sc.CellKey, r => r.CellKey, (_, r) => r)
                .ToDictionaryAsync(r => r.CellKey, StringComparer.Ordinal, token).ConfigureAwait(false);
            var metrics = (await members
                    .Join(db.CellMetrics, sc => sc.CellKey, m => m.CellKey, (_, m) => m)
                    .ToListAsync(token).ConfigureAwait(false))
                .ToLookup(m => m.CellKey, StringComparer.Ordinal);
            var outputs = withOutputs
                ? await members
                    .Join(db.CellOutputs, sc => sc.CellKey, o => o.CellKey, (_, o) => o)
                    .ToDictionaryAsync(o => o.CellKey, o => o.OutputsJson, StringComparer.Ordinal, token).ConfigureAwait(false)
                : new Dictionary<string, string>(StringComparer.Ordinal);

            IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> list = cells
                .OrderBy(c => c.Dataset, StringComparer.Ordinal)
                .ThenBy(c => c.Split, StringComparer.Ordinal)
                .ThenBy(c => c.Method, StringComparer.Ordinal)
                .ThenBy(c => c.Size)
                .ThenBy(c => c.Subsample)
                .ThenBy(c => c.Seed)
                .ThenBy(c => c.CellKey, StringComparer.Ordinal)
                .Select(c => (ToRecord(c), results.TryGetValue(c.CellKey, out var r)
                    ? ToRecord(r, metrics[c.CellKey], outputs.GetValueOrDefault(c.CellKey))
                    : null))
                .ToList();
            return list;
        }, ct);
    }

    public Task<IReadOnlyList<string>> GetOutputsAsync(string cellKey, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, "SELECT outputs_json FROM cell_outputs WHERE cell_key = @cell_key", ("cell_key", cellKey));
            IReadOnlyList<string> outputs = await command.ExecuteScalarAsync(token).ConfigureAwait(false) is string json
                ? JsonSerializer.Deserialize<string[]>(json, Json) ?? []
                : [];
            return outputs;
        }, ct);
    }

    public Task<string?> GetCurveAsync(string cellKey, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, "SELECT curve_json FROM cell_curves WHERE cell_key = @cell_key", ("cell_key", cellKey));
            return await command.ExecuteScalarAsync(token).ConfigureAwait(false) as string;
        }, ct);
    }

    // ---------------------------------------------------------------- disposal

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return ValueTask.CompletedTask;
        }

        // Release idle pooled connections (for SQLite: the file handles). Busy ones close when returned.
        if (Provider == ResultStoreProvider.Sqlite)
        {
            using var connection = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(connection);
        }
        else
        {
            using var connection = new NpgsqlConnection(_connectionString);
            NpgsqlConnection.ClearPool(connection);
        }

        return ValueTask.CompletedTask;
    }

    // ---------------------------------------------------------------- plumbing

    private async Task<T> InTransactionAsync<T>(
        bool write,
        Func<DbConnection, DbTransaction, ResultsDbContext, CancellationToken, Task<T>> work,
        CancellationToken ct)
    {
        return await RunAsync(async token =>
        {
            await using var db = new ResultsDbContext(_options);
            await db.Database.OpenConnectionAsync(token).ConfigureAwait(false);
            var connection = db.Database.GetDbConnection();

            DbTransaction? external = null;
            IDbContextTransaction transaction;
            if (Provider == ResultStoreProvider.Sqlite && !write)
            {
                // A deferred transaction: a consistent WAL snapshot without taking the write lock
                // (Microsoft.Data.Sqlite's default BEGIN IMMEDIATE would serialise readers with writers).
                external = ((SqliteConnection)connection).BeginTransaction(deferred: true);
                transaction = (await db.Database.UseTransactionAsync(external, token).ConfigureAwait(false))!;
            }
            else
            {
                // Postgres reads: one snapshot for the whole operation. Writes: read committed (row locks from
                // ON CONFLICT serialise writers of the same cell). SQLite writes: BEGIN IMMEDIATE.
                var isolation = (Provider, write) switch
                {
                    (ResultStoreProvider.Postgres, true) => IsolationLevel.ReadCommitted,
                    (ResultStoreProvider.Postgres, false) => IsolationLevel.RepeatableRead,
                    _ => IsolationLevel.Serializable,
                };
                transaction = await db.Database.BeginTransactionAsync(isolation, token).ConfigureAwait(false);
            }

            try
            {
                var result = await work(connection, transaction.GetDbTransaction(), db, token).ConfigureAwait(false);
                await transaction.CommitAsync(token).ConfigureAwait(false);
                return result;
            }
            finally
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
                if (external is not null)
                {
                    await external.DisposeAsync().ConfigureAwait(false);
                }
            }
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs one idempotent unit of work with retries. Microsoft.Data.Sqlite does its I/O (and its busy waiting)
    /// synchronously, so SQLite work is moved off the caller's thread: the returned task never blocks the caller.
    /// </summary>
    private Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        return Provider == ResultStoreProvider.Sqlite
            ? Task.Run(() => _retry.ExecuteAsync(async token => await work(token).ConfigureAwait(false), ct).AsTask(), ct)
            : _retry.ExecuteAsync(async token => await work(token).ConfigureAwait(false), ct).AsTask();
    }

    private static async Task InsertRowsAsync(
        DbConnection connection, DbTransaction tx, string head, string tail,
        IEnumerable<object?[]> rows, int columns, CancellationToken ct)
    {
        var rowsPerStatement = Math.Max(1, MaxParametersPerStatement / columns);
        foreach (var chunk in rows.Chunk(rowsPerStatement))
        {
            await using var command = Command(connection, tx, "");
            var sql = new StringBuilder(head);
            for (var r = 0; r < chunk.Length; r++)
            {
                sql.Append(r == 0 ? "(" : ", (");
                for (var c = 0; c < columns; c++)
                {
                    var name = $"p{r}_{c}";
                    sql.Append(c == 0 ? "@" : ", @").Append(name);
                    AddParameter(command, name, chunk[r][c]);
                }

                sql.Append(')');
            }

            command.CommandText = sql.Append(tail).ToString();
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    private static async Task<int> ExecuteAsync(
        DbConnection connection, DbTransaction? tx, string sql, CancellationToken ct, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(connection, tx, sql, parameters);
        return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static DbCommand Command(
        DbConnection connection, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            AddParameter(command, name, value);
        }

        return command;
    }

    private static void AddParameter(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    /// <summary>UTC, truncated to microseconds (PostgreSQL's precision), so both providers round-trip the same value.</summary>
    private static DateTimeOffset Timestamp(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % 10), TimeSpan.Zero);
    }

    private static bool IsTransient(Exception ex) => ex switch
    {
        NpgsqlException { IsTransient: true } => true,
        SqliteException { SqliteErrorCode: 5 or 6 } => true, // SQLITE_BUSY, SQLITE_LOCKED
        TimeoutException => true,
        _ => false,
    };

    private static SweepRecord ToRecord(SweepRow s) =>
        new(s.SweepId, s.Name, s.SpecYaml, s.SpecHash, s.SubmittedAt.ToUniversalTime(), s.CellCount)
        {
            Status = s.Status,
            MaxAttempts = s.MaxAttempts,
            LeaseSeconds = s.LeaseSeconds,
            Metrics = JsonSerializer.Deserialize<List<string>>(s.MetricsJson, Json) ?? [],
            RequiredDevice = s.RequiredDevice,
            ArtifactRetention = s.Artifacts,
        };

    private static CellDescriptor ToRecord(CellRow c) =>
        new(c.CellKey, c.Dataset, c.Split, c.Method, c.Size, c.Subsample, c.Seed, c.CellJson);

    private static CellResultRecord ToRecord(CellResultRow r, IEnumerable<CellMetricRow> metrics, string? outputsJson)
    {
        var metricMap = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var m in metrics.OrderBy(m => m.Metric, StringComparer.Ordinal))
        {
            metricMap[m.Metric] = m.Value ?? double.NaN;
        }

        var outputs = outputsJson is null
            ? []
            : JsonSerializer.Deserialize<string[]>(outputsJson, Json) ?? [];
        return new CellResultRecord(
            r.CellKey, r.Attempt, r.Status, metricMap, r.Error, r.WorkerId, r.Device, r.WallSeconds,
            r.PeakMemoryBytes, r.ProvenanceJson, outputs, r.FinishedAt.ToUniversalTime());
    }
}
