using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Orchestrator.Core.Aggregation;
using Orchestrator.Results;
using Orchestrator.TestKit;

namespace Orchestrator.Benchmarks;

/// <summary>
/// Latency of the results queries on PostgreSQL holding <c>--rows</c> result rows (default 100,000; a throwaway server):
/// every cell has a result (1% failed) and two metrics (bleu, rouge), and 64-hex-character keys like real cell keys.
/// Sweeps are nested prefixes of the cells — 160 cells (the Prefix-Tuning §6.3 grid: 4 methods × 4 sizes × 5 subsamples × 2 seeds),
/// 2,000, 20,000 and all of them — so the cost can be read against the sweep's size in one database. For each sweep it measures
/// p50/p95 of the full aggregate (<see cref="IResultStore.GetPointSumsAsync"/> + the statistics), a paired comparison of two
/// methods (<see cref="IResultStore.GetPairsAsync"/> + the paired statistics) and the results grain's fingerprint check.
/// </summary>
public static class ResultsBenchmark
{
    private static readonly string[] Methods = ["prefix", "finetune", "lora", "adapter"];

    public static async Task<int> RunAsync(string[] args)
    {
        var rows = Arg(args, "--rows", 100_000);
        var iterations = Arg(args, "--iterations", 50);
        var sweeps = new[] { 160, 2_000, 20_000, rows }.Where(n => n <= rows).Distinct().ToList();

        var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        try
        {
            var connection = await postgres.CreateDatabaseAsync("results_bench");
            await using var store = ResultStores.Postgres(connection);
            await store.EnsureSchemaAsync();
            var load = Stopwatch.StartNew();
            await LoadAsync(connection, rows, sweeps);
            load.Stop();

            Console.WriteLine($"# results query benchmark ({Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, PostgreSQL on loopback)");
            Console.WriteLine();
            Console.WriteLine($"{rows:N0} result rows (~{rows * 2:N0} metric rows) loaded in {load.Elapsed.TotalSeconds:F1} s; {iterations} timed runs after 5 warm-up runs.");
            Console.WriteLine();
            Console.WriteLine("| sweep | cells | query | p50 ms | p95 ms | rows out |");
            Console.WriteLine("|---|---:|---|---:|---:|---:|");
            foreach (var cells in sweeps)
            {
                var sweep = $"s{cells}";
                var points = 0;
                var aggregate = await TimeAsync(iterations, async () =>
                {
                    var sums = await store.GetPointSumsAsync(sweep);
                    points = PointAggregation.Summarize(sums).Count;
                });
                Report(sweep, cells, "full aggregate (all metrics)", aggregate, points);

                var pairCount = 0;
                var paired = await TimeAsync(iterations, async () =>
                {
                    var pairs = await store.GetPairsAsync(sweep, "bleu", PairedBy.Method, "prefix", "finetune");
                    pairCount = pairs.Count;
                    _ = PairedComparison.CompareMethods(pairs);
                });
                Report(sweep, cells, "paired comparison prefix − finetune (bleu)", paired, pairCount);

                var version = await TimeAsync(iterations, () => store.GetResultsVersionAsync(sweep));
                Report(sweep, cells, "results fingerprint (grain refresh check)", version, 1);
            }

            return 0;
        }
        finally
        {
            await postgres.DisposeAsync();
        }
    }

    /// <summary>
    /// Generates the rows inside PostgreSQL (generate_series), then VACUUM ANALYZE. Cell g: method g mod 4, size (g / 4) mod 4,
    /// subsample (g / 16) mod 5, seed g / 80 — so every prefix of 80 cells is a complete grid and methods pair up.
    /// </summary>
    private static async Task LoadAsync(string connectionString, int rows, IReadOnlyList<int> sweeps)
    {
        var sql = new System.Text.StringBuilder($"""
            INSERT INTO cells (cell_key, dataset, split, method, size, subsample, seed, cell_json)
            SELECT encode(sha256(g::text::bytea), 'hex'), 'e2e', 'default',
                   (ARRAY['{string.Join("','", Methods)}'])[g % 4 + 1],
                   (ARRAY[50, 100, 200, 500])[(g / 4) % 4 + 1],
                   (g / 16) % 5, g / 80, repeat('x', 400)
            FROM generate_series(0, {rows - 1}) g;

            INSERT INTO cell_results (cell_key, attempt, status, error, worker_id, device, wall_seconds, peak_memory_bytes, provenance_json, finished_at)
            SELECT encode(sha256(g::text::bytea), 'hex'), 1, CASE WHEN g % 100 = 99 THEN 'failed' ELSE 'succeeded' END, NULL,
                   'w' || (g % 8), 'cpu', 60 + g % 17, 1073741824, repeat('p', 300), now() - (g || ' seconds')::interval
            FROM generate_series(0, {rows - 1}) g;

            INSERT INTO cell_metrics (cell_key, metric, value)
            SELECT encode(sha256(g::text::bytea), 'hex'), m, 20 + (g % 37) * 0.5 + (g % 4) + CASE WHEN m = 'rouge' THEN 15 ELSE 0 END
            FROM generate_series(0, {rows - 1}) g CROSS JOIN (VALUES ('bleu'), ('rouge')) AS t(m)
            WHERE g % 100 <> 99;

            """);
        foreach (var cells in sweeps)
        {
            sql.Append($"""
                INSERT INTO sweeps (sweep_id, name, spec_yaml, spec_hash, submitted_at, cell_count, metrics_json)
                VALUES ('s{cells}', 'bench{cells}', 'name: bench', 'h', now(), {cells}, '["bleu","rouge"]');
                INSERT INTO sweep_cells (sweep_id, cell_key) SELECT 's{cells}', encode(sha256(g::text::bytea), 'hex') FROM generate_series(0, {cells - 1}) g;

                """);
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand(sql.ToString(), connection) { CommandTimeout = 600 })
        {
            await command.ExecuteNonQueryAsync();
        }

        await using var vacuum = new NpgsqlCommand("VACUUM ANALYZE", connection) { CommandTimeout = 600 };
        await vacuum.ExecuteNonQueryAsync();
    }

    private static async Task<List<double>> TimeAsync(int iterations, Func<Task> work)
    {
        for (var i = 0; i < 5; i++)
        {
            await work();
        }

        var times = new List<double>(iterations);
        for (var i = 0; i < iterations; i++)
        {
            var clock = Stopwatch.StartNew();
            await work();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        return times;
    }

    private static void Report(string sweep, int cells, string query, List<double> sorted, int rowsOut) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {sweep} | {cells:N0} | {query} | {Percentile(sorted, 0.50):F1} | {Percentile(sorted, 0.95):F1} | {rowsOut:N0} |"));

    private static double Percentile(List<double> sorted, double p) => sorted[(int)Math.Min(sorted.Count - 1, Math.Ceiling(p * sorted.Count) - 1)];

    private static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
