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
                       coalesce(a.attempts, 0), r.status, r.error, r.attempt
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
                list.Add(new UnfinishedCell(reader.GetString(0), reader.GetString(1), label, Math.Max(attempts, resultAttempt),
                    failed && !reader.IsDBNull(9) ? reader.GetString(9) : null));
            }

            IReadOnlyList<UnfinishedCell> result = list;
            return result;
        }, ct);

    public Task RecordAttemptsAsync(IReadOnlyCollection<KeyValuePair<string, int>> attempts, CancellationToken ct = default)
    {
        if (attempts.Count == 0)
        {
            return Task.CompletedTask;
        }

        var now = Timestamp(DateTimeOffset.UtcNow);
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            await InsertRowsAsync(connection, tx,
                "INSERT INTO cell_attempts (cell_key, attempts, updated_at) VALUES ",
                " ON CONFLICT (cell_key) DO UPDATE SET attempts = excluded.attempts, updated_at = excluded.updated_at",
                attempts.Select(a => new object?[] { a.Key, a.Value, now }), columns: 3, token).ConfigureAwait(false);
            return true;
        }, ct);
    }
}
