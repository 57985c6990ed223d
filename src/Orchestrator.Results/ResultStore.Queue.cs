using System.Globalization;
using Microsoft.EntityFrameworkCore;

namespace Orchestrator.Results;

/// <summary>What the lease queue needs from the database, its source of truth after any restart.</summary>
internal sealed partial class ResultStore
{
    public Task<int> GetSchemaVersionAsync(CancellationToken ct = default) =>
        InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            var exists = Provider == ResultStoreProvider.Sqlite
                ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
                : "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' AND table_schema = current_schema()";
            await using (var command = Command(connection, tx, exists))
            {
                if (Convert.ToInt64(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture) == 0)
                {
                    return 0;
                }
            }

            await using var max = Command(connection, tx, "SELECT coalesce(max(version), 0) FROM schema_migrations");
            return Convert.ToInt32(await max.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }, ct);

    public Task SetSweepStatusAsync(string sweepId, string status, CancellationToken ct = default)
    {
        if (status is not (SweepStatus.Active or SweepStatus.Cancelled))
        {
            throw new ArgumentException($"unknown sweep status '{status}'", nameof(status));
        }

        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
            await ExecuteAsync(connection, tx, "UPDATE sweeps SET status = @status WHERE sweep_id = @sweep_id", token,
                ("status", status), ("sweep_id", sweepId)).ConfigureAwait(false), ct);
    }

    public Task<IReadOnlyList<SweepRecord>> GetSweepsAsync(string? status, CancellationToken ct = default) =>
        InTransactionAsync(write: false, async (_, _, db, token) =>
        {
            var rows = await db.Sweeps.Where(s => status == null || s.Status == status).ToListAsync(token).ConfigureAwait(false);
            IReadOnlyList<SweepRecord> list = rows.Select(ToRecord).OrderBy(s => s.SubmittedAt).ToList();
            return list;
        }, ct);

    public Task<IReadOnlyList<UnfinishedCell>> GetUnfinishedCellsAsync(string sweepId, CancellationToken ct = default) =>
        InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, """
                SELECT c.cell_key, c.cell_json, c.method, c.size, c.subsample, c.seed, c.split,
                       coalesce(a.attempts, 0), r.status, r.error, r.attempt, coalesce(a.attempt_limit, 0)
                FROM sweep_cells sc
                JOIN cells c ON c.cell_key = sc.cell_key
                LEFT JOIN cell_attempts a ON a.cell_key = sc.cell_key
                LEFT JOIN cell_results r ON r.cell_key = sc.cell_key
                WHERE sc.sweep_id = @sweep_id AND (r.status IS NULL OR r.status <> 'succeeded')
                ORDER BY c.dataset, c.split, c.method, c.size, c.subsample, c.seed, c.cell_key
                """, ("sweep_id", sweepId));
            var list = new List<UnfinishedCell>();
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                var split = reader.GetString(6);
                var label = $"{reader.GetString(2)} n={reader.GetInt32(3)} sub{reader.GetInt32(4)} seed{reader.GetInt32(5)}" +
                            (split == "default" ? "" : $" [{split}]");
                var attempts = Convert.ToInt32(reader.GetValue(7), CultureInfo.InvariantCulture);
                var failed = !reader.IsDBNull(8);
                var resultAttempt = reader.IsDBNull(10) ? 0 : Convert.ToInt32(reader.GetValue(10), CultureInfo.InvariantCulture);
                var limit = Convert.ToInt32(reader.GetValue(11), CultureInfo.InvariantCulture);
                list.Add(new UnfinishedCell(reader.GetString(0), reader.GetString(1), label, Math.Max(attempts, resultAttempt),
                    failed && !reader.IsDBNull(9) ? reader.GetString(9) : null, limit));
            }

            IReadOnlyList<UnfinishedCell> result = list;
            return result;
        }, ct);

    public Task<int> BeginAttemptAsync(string cellKey, int limit, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        var now = Timestamp(DateTimeOffset.UtcNow);

        // One statement: the count read back is the count written, whatever other writers do. A result row may record a
        // higher attempt than the counter (databases from before the counter was written first): the count never goes below it.
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, """
                INSERT INTO cell_attempts (cell_key, attempts, attempt_limit, updated_at)
                VALUES (@cell_key, 1 + coalesce((SELECT attempt FROM cell_results WHERE cell_key = @cell_key), 0), @limit, @now)
                ON CONFLICT (cell_key) DO UPDATE SET
                    attempts = max_of_two,
                    attempt_limit = CASE WHEN cell_attempts.attempt_limit > excluded.attempt_limit
                                         THEN cell_attempts.attempt_limit ELSE excluded.attempt_limit END,
                    updated_at = excluded.updated_at
                RETURNING attempts
                """.Replace("max_of_two", """
                    CASE WHEN cell_attempts.attempts + 1 > excluded.attempts THEN cell_attempts.attempts + 1 ELSE excluded.attempts END
                    """.Trim(), StringComparison.Ordinal),
                ("cell_key", cellKey), ("limit", limit), ("now", now));
            return Convert.ToInt32(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }, ct);
    }

    public async Task<IReadOnlyDictionary<string, AttemptBudget>> GrantAttemptsAsync(
        IReadOnlyCollection<string> cellKeys, int attempts, bool includeExhausted, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(cellKeys);
        ArgumentOutOfRangeException.ThrowIfNegative(attempts);
        var keys = cellKeys.Distinct(StringComparer.Ordinal).ToList();
        var budgets = new Dictionary<string, AttemptBudget>(StringComparer.Ordinal);
        if (keys.Count == 0)
        {
            return budgets;
        }

        var now = Timestamp(DateTimeOffset.UtcNow);
        return await InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            budgets.Clear(); // a retried transaction starts over
            foreach (var chunk in keys.Chunk(KeysPerQuery))
            {
                await InsertRowsAsync(connection, tx,
                    "INSERT INTO cell_attempts (cell_key, attempts, attempt_limit, updated_at) VALUES ",
                    " ON CONFLICT (cell_key) DO NOTHING",
                    chunk.Select(k => new object?[] { k, 0, 0, now }), columns: 4, token).ConfigureAwait(false);
                var inList = string.Join(", ", chunk.Select((_, i) => $"@k{i}"));

                // A count below the attempt recorded on the cell's result row (databases from before counts were written
                // first) is raised to it, so that no attempt number is issued twice.
                await using (var raise = Command(connection, tx, $"""
                    UPDATE cell_attempts
                    SET attempts = (SELECT r.attempt FROM cell_results r WHERE r.cell_key = cell_attempts.cell_key)
                    WHERE cell_key IN ({inList})
                      AND attempts < coalesce((SELECT r.attempt FROM cell_results r WHERE r.cell_key = cell_attempts.cell_key), 0)
                    """))
                {
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        AddParameter(raise, $"k{i}", chunk[i]);
                    }

                    await raise.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                }

                await using (var update = Command(connection, tx, $"""
                    UPDATE cell_attempts
                    SET attempt_limit = attempts + @grant, updated_at = @now
                    WHERE cell_key IN ({inList}) AND attempt_limit < attempts + @grant
                      AND (@all OR attempt_limit = 0 OR attempts < attempt_limit)
                    """, ("grant", attempts), ("now", now), ("all", includeExhausted)))
                {
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        AddParameter(update, $"k{i}", chunk[i]);
                    }

                    await update.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                }

                await using var select = Command(connection, tx, $"SELECT cell_key, attempts, attempt_limit FROM cell_attempts WHERE cell_key IN ({inList})");
                for (var i = 0; i < chunk.Length; i++)
                {
                    AddParameter(select, $"k{i}", chunk[i]);
                }

                await using var reader = await select.ExecuteReaderAsync(token).ConfigureAwait(false);
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    budgets[reader.GetString(0)] = new AttemptBudget(
                        Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture), Convert.ToInt32(reader.GetValue(2), CultureInfo.InvariantCulture));
                }
            }

            return (IReadOnlyDictionary<string, AttemptBudget>)budgets;
        }, ct).ConfigureAwait(false);
    }

    public Task RaiseAttemptLimitAsync(string cellKey, int limit, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        var now = Timestamp(DateTimeOffset.UtcNow);
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
            await ExecuteAsync(connection, tx, """
                INSERT INTO cell_attempts (cell_key, attempts, attempt_limit, updated_at) VALUES (@cell_key, 0, @limit, @now)
                ON CONFLICT (cell_key) DO UPDATE SET attempt_limit = excluded.attempt_limit, updated_at = excluded.updated_at
                WHERE cell_attempts.attempt_limit < excluded.attempt_limit
                """, token, ("cell_key", cellKey), ("limit", limit), ("now", now)).ConfigureAwait(false), ct);
    }
}
