using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Aggregation;

namespace Orchestrator.Results;

/// <summary>
/// Aggregates computed in the database: plain SQL GROUP BY over indexed columns (migration 4), the same text on SQLite and
/// PostgreSQL. SQLite has no stddev, so the database returns count, sum, sum of squares, min and max, and
/// <see cref="MetricStatistics.FromSums"/> does the rest.
/// </summary>
internal sealed partial class ResultStore
{
    private const string PointCountsSql = """
        SELECT c.dataset, c.split, c.method, c.size, count(*),
               sum(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END)
        FROM sweep_cells sc
        JOIN cells c ON c.cell_key = sc.cell_key
        LEFT JOIN cell_results r ON r.cell_key = sc.cell_key
        WHERE sc.sweep_id = @sweep_id
        GROUP BY c.dataset, c.split, c.method, c.size
        """;

    private const string MetricSumsSql = """
        SELECT c.dataset, c.split, c.method, c.size, m.metric,
               count(m.value), sum(m.value), sum(m.value * m.value), min(m.value), max(m.value)
        FROM sweep_cells sc
        JOIN cells c ON c.cell_key = sc.cell_key
        JOIN cell_results r ON r.cell_key = sc.cell_key AND r.status = 'succeeded'
        JOIN cell_metrics m ON m.cell_key = sc.cell_key
        WHERE sc.sweep_id = @sweep_id {0}
        GROUP BY c.dataset, c.split, c.method, c.size, m.metric
        """;

    // {0}: the compared column (method or split); {1}: the partner's join on it.
    private const string PairsSql = """
        SELECT ca.dataset, ca.split, ca.method, ca.size, ca.subsample, ca.seed, ma.value, mb.value
        FROM sweep_cells sa
        JOIN cells ca ON ca.cell_key = sa.cell_key
        JOIN cell_results ra ON ra.cell_key = sa.cell_key AND ra.status = 'succeeded'
        JOIN cell_metrics ma ON ma.cell_key = sa.cell_key AND ma.metric = @metric
        JOIN cells cb ON cb.dataset = ca.dataset AND cb.size = ca.size AND cb.subsample = ca.subsample AND cb.seed = ca.seed
                     AND {1}
        JOIN sweep_cells sb ON sb.sweep_id = sa.sweep_id AND sb.cell_key = cb.cell_key
        JOIN cell_results rb ON rb.cell_key = cb.cell_key AND rb.status = 'succeeded'
        JOIN cell_metrics mb ON mb.cell_key = cb.cell_key AND mb.metric = @metric
        WHERE sa.sweep_id = @sweep_id AND ca.{0} = @a AND ma.value IS NOT NULL AND mb.value IS NOT NULL
        ORDER BY ca.dataset, ca.split, ca.method, ca.size, ca.subsample, ca.seed
        """;

    public Task<IReadOnlyList<PointSums>> GetPointSumsAsync(string sweepId, string? metric = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            var points = new List<(string Dataset, string Split, string Method, int Size, int Expected, int Failed)>();
            await using (var command = Command(connection, tx, PointCountsSql, ("sweep_id", sweepId)))
            await using (var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    points.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), Int(reader, 3), Int(reader, 4), Int(reader, 5)));
                }
            }

            var sums = new Dictionary<(string, string, string, int, string), PointSums>();
            var sql = string.Format(CultureInfo.InvariantCulture, MetricSumsSql, metric is null ? "" : "AND m.metric = @metric");
            var parameters = metric is null
                ? new[] { ("sweep_id", (object?)sweepId) }
                : [("sweep_id", sweepId), ("metric", metric)];
            await using (var command = Command(connection, tx, sql, parameters))
            await using (var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    var n = Int(reader, 5);
                    var row = new PointSums(reader.GetString(0), reader.GetString(1), reader.GetString(2), Int(reader, 3), reader.GetString(4),
                        Expected: 0, Failed: 0, n, Double(reader, 6), Double(reader, 7), Double(reader, 8), Double(reader, 9));
                    sums[(row.Dataset, row.Split, row.Method, row.Size, row.Metric)] = row;
                }
            }

            // Every point gets a row for every metric, with n = 0 where nothing finished: a missing point is visible.
            var metrics = metric is not null
                ? [metric]
                : sums.Keys.Select(k => k.Item5).Distinct(StringComparer.Ordinal).ToList();
            if (metrics.Count == 0)
            {
                metrics = await SweepMetricsAsync(connection, tx, sweepId, token).ConfigureAwait(false);
            }

            return PointAggregation.InTableOrder(points
                .SelectMany(p => metrics.Select(m => sums.TryGetValue((p.Dataset, p.Split, p.Method, p.Size, m), out var s)
                    ? s with { Expected = p.Expected, Failed = p.Failed }
                    : new PointSums(p.Dataset, p.Split, p.Method, p.Size, m, p.Expected, p.Failed, 0, 0, 0, double.NaN, double.NaN))));
        }, ct);
    }

    public Task<IReadOnlyList<PairedObservation>> GetPairsAsync(string sweepId, string metric, PairedBy by, string a, string b,
        CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        ArgumentException.ThrowIfNullOrWhiteSpace(metric);
        ArgumentException.ThrowIfNullOrWhiteSpace(a);
        ArgumentException.ThrowIfNullOrWhiteSpace(b);
        var sql = by switch
        {
            PairedBy.Method => string.Format(CultureInfo.InvariantCulture, PairsSql, "method", "cb.split = ca.split AND cb.method = @b"),
            PairedBy.Split => string.Format(CultureInfo.InvariantCulture, PairsSql, "split", "cb.method = ca.method AND cb.split = @b"),
            _ => throw new ArgumentOutOfRangeException(nameof(by)),
        };
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            var list = new List<PairedObservation>();
            await using var command = Command(connection, tx, sql, ("sweep_id", sweepId), ("metric", metric), ("a", a), ("b", b));
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                list.Add(new PairedObservation(reader.GetString(0), reader.GetString(1), reader.GetString(2), Int(reader, 3), Int(reader, 4),
                    Int(reader, 5), Double(reader, 6), Double(reader, 7)));
            }

            IReadOnlyList<PairedObservation> result = list;
            return result;
        }, ct);
    }

    public Task<ResultsVersion> GetResultsVersionAsync(string sweepId, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, """
                SELECT rs.n, rs.attempts, rs.last, ms.n, ms.total
                FROM (SELECT count(r.cell_key) AS n, coalesce(sum(r.attempt), 0) AS attempts, max(r.finished_at) AS last
                      FROM sweep_cells sc JOIN cell_results r ON r.cell_key = sc.cell_key
                      WHERE sc.sweep_id = @sweep_id) rs
                CROSS JOIN (SELECT count(*) AS n, coalesce(sum(m.value), 0) AS total
                            FROM sweep_cells sc JOIN cell_metrics m ON m.cell_key = sc.cell_key
                            WHERE sc.sweep_id = @sweep_id) ms
                """, ("sweep_id", sweepId));
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await reader.ReadAsync(token).ConfigureAwait(false);
            var last = reader.IsDBNull(2) ? "" : Convert.ToString(reader.GetValue(2), CultureInfo.InvariantCulture) ?? "";
            return new ResultsVersion(Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture),
                Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture), last,
                Convert.ToInt64(reader.GetValue(3), CultureInfo.InvariantCulture), Convert.ToDouble(reader.GetValue(4), CultureInfo.InvariantCulture));
        }, ct);
    }

    public Task<bool> UpdateMetricsAsync(string cellKey, int attempt, IReadOnlyDictionary<string, double> metrics, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        ArgumentNullException.ThrowIfNull(metrics);
        var rows = metrics.OrderBy(m => m.Key, StringComparer.Ordinal).ToList();
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            // The result row is locked (Postgres) or the database is (SQLite's BEGIN IMMEDIATE): a concurrent upsert of a newer
            // attempt either precedes this (and the attempt no longer matches) or waits for it.
            var sql = "SELECT attempt, status FROM cell_results WHERE cell_key = @cell_key" +
                      (Provider == ResultStoreProvider.Postgres ? " FOR UPDATE" : "");
            await using (var command = Command(connection, tx, sql, ("cell_key", cellKey)))
            await using (var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(token).ConfigureAwait(false) || Int(reader, 0) != attempt || reader.GetString(1) != CellStatus.Succeeded)
                {
                    return false;
                }
            }

            await InsertRowsAsync(connection, tx,
                "INSERT INTO cell_metrics (cell_key, metric, value) VALUES ",
                " ON CONFLICT (cell_key, metric) DO UPDATE SET value = excluded.value",
                rows.Select(m => new object?[] { cellKey, m.Key, double.IsNaN(m.Value) ? null : m.Value }),
                columns: 3, token).ConfigureAwait(false);
            return true;
        }, ct);
    }

    private static async Task<List<string>> SweepMetricsAsync(DbConnection connection, DbTransaction tx, string sweepId, CancellationToken ct)
    {
        await using var command = Command(connection, tx, "SELECT metrics_json FROM sweeps WHERE sweep_id = @sweep_id", ("sweep_id", sweepId));
        return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is string json
            ? JsonSerializer.Deserialize<List<string>>(json, Json) ?? []
            : [];
    }

    private static int Int(DbDataReader reader, int ordinal) => Convert.ToInt32(reader.GetValue(ordinal), CultureInfo.InvariantCulture);

    private static double Double(DbDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? double.NaN : Convert.ToDouble(reader.GetValue(ordinal), CultureInfo.InvariantCulture);
}
