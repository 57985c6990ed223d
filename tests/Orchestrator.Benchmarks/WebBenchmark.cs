using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Hosting;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.TestKit.Browser;
using Orchestrator.Web;

namespace Orchestrator.Benchmarks;

/// <summary>
/// The results page on big stored sweeps: for each size in <c>--cells</c> (default 2,000 and 100,000) a SQLite data directory
/// holds one finished sweep (4 methods × 5 sizes × subsamples × seeds, 1% failed, two metrics), served as <c>orchestrator ui</c>
/// serves it (an embedded host that trains nothing, and the page). It times each JSON endpoint the page calls (p50/p95 over
/// <c>--iterations</c> after 2 warm-up calls) and, in a real headless Chromium, the time from navigation start until each page
/// shows its data (its table filled), over fresh loads.
/// </summary>
public static class WebBenchmark
{
    private static readonly string[] Methods = ["adapter", "finetune", "lora", "prefix"];
    private static readonly int[] Sizes = [50, 100, 200, 500, 1000];

    public static async Task<int> RunAsync(string[] args)
    {
        var cellCounts = Option(args, "--cells", "2000,100000").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();
        var iterations = int.Parse(Option(args, "--iterations", "10"), CultureInfo.InvariantCulture);
        Console.WriteLine($"# results page benchmark ({Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, SQLite, headless Chromium)");
        Console.WriteLine();
        Console.WriteLine("| cells | request | p50 ms | p95 ms | bytes |");
        Console.WriteLine("|---:|---|---:|---:|---:|");
        var pages = new List<string>();
        await using var browser = await Chromium.StartAsync();
        foreach (var cells in cellCounts)
        {
            var dir = Directory.CreateTempSubdirectory("orch-web-bench-");
            try
            {
                var load = Stopwatch.StartNew();
                var sweepId = await LoadAsync(dir.FullName, cells);
                load.Stop();
                Console.Error.WriteLine($"{cells:N0} cells stored in {load.Elapsed.TotalSeconds:F1} s");

                using var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = dir.FullName, RunWorker = false });
                await host.StartAsync();
                await using var ui = await WebUi.StartAsync(new WebUiOptions { Port = 0 }, host.Services);
                using var http = new HttpClient { BaseAddress = new Uri(ui.LocalUrl), Timeout = TimeSpan.FromMinutes(5) };
                var api = "/api/sweeps/" + sweepId;
                var cold = Stopwatch.StartNew();
                (await http.GetAsync(api)).EnsureSuccessStatusCode();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {cells:N0} | `/api/sweeps/ID`, the first request (reads the sweep's cells; later ones reuse them until a result is written) | {cold.Elapsed.TotalMilliseconds:F0} | | |"));
                foreach (var path in new[]
                         {
                             "/api/sweeps", api, api + "/plot?metric=bleu", api + "/results?metric=bleu&by=dataset,split,method,size",
                             api + "/compare?a=lora&b=finetune&metric=bleu", api + "/compute", api + "/cells?offset=0&limit=50",
                             $"{api}/cells?offset={cells - 50}&limit=50", api + "/events",
                         })
                {
                    var (times, bytes) = await TimeRequestAsync(http, path, iterations);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {cells:N0} | `{path.Replace(sweepId, "ID", StringComparison.Ordinal)}` | {P(times, 0.5):F0} | {P(times, 0.95):F0} | {bytes:N0} |"));
                }

                await TimeRereadsAsync(http, api, Path.Combine(dir.FullName, "results.db"), sweepId, cells, iterations);

                await using var page = await browser.NewPageAsync();
                foreach (var (name, hash, ready) in new[]
                         {
                             ("sweeps", "#/", "document.querySelector('#sweeps-table tbody tr')"),
                             ("sweep (live progress)", $"#/sweep/{sweepId}", "document.querySelector('#progress-table tbody tr')"),
                             ("results (plot, table, compute)", $"#/sweep/{sweepId}/results?metric=bleu",
                                 "document.querySelector('#results-table tbody tr') && document.querySelector('#plot svg path.line')"),
                             ("results with a comparison", $"#/sweep/{sweepId}/results?metric=bleu&a=lora&b=finetune", "document.querySelector('#compare-table tbody tr')"),
                             ("cells (first page of 50)", $"#/sweep/{sweepId}/cells", "document.querySelectorAll('#cells-table tbody tr').length === 50"),
                         })
                {
                    var times = new List<double>();
                    for (var i = 0; i < Math.Max(3, iterations / 2); i++)
                    {
                        await page.NavigateAsync("about:blank");
                        await page.NavigateAsync(ui.LocalUrl + hash);
                        // performance.now() counts from the navigation's start: the time until the user sees the data.
                        times.Add((await page.EvaluateAsync(
                            $"new Promise(done => {{ const f = () => ({ready}) ? done(performance.now()) : setTimeout(f, 5); f(); }})")).GetDouble());
                    }

                    if (page.Errors.Count > 0)
                    {
                        throw new InvalidOperationException($"{name}: the page reported errors: {string.Join("\n", page.Errors)}");
                    }

                    pages.Add(string.Create(CultureInfo.InvariantCulture, $"| {cells:N0} | {name} | {times[0]:F0} | {P(times.Skip(1).ToList(), 0.5):F0} | {times.Max():F0} |"));
                }

                await host.StopAsync();
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        }

        Console.WriteLine();
        Console.WriteLine("Page loads in Chromium (navigation start → data shown), ms:");
        Console.WriteLine();
        Console.WriteLine("| cells | page | first load | p50 of reloads | max |");
        Console.WriteLine("|---:|---|---:|---:|---:|");
        pages.ForEach(Console.WriteLine);
        return 0;
    }

    /// <summary>One finished sweep of <paramref name="cells"/> cells written through the results store, as workers write them.</summary>
    private static async Task<string> LoadAsync(string dataDir, int cells)
    {
        var sweepId = $"bench-{cells}";
        var perSeed = Methods.Length * Sizes.Length;
        var subsamples = Math.Max(1, (int)Math.Round(Math.Sqrt(cells / (double)perSeed)));
        await using var store = ResultStores.Sqlite(Path.Combine(dataDir, "results.db"));
        await store.EnsureSchemaAsync();
        var descriptors = Enumerable.Range(0, cells).Select(g =>
        {
            var (method, size, subsample, seed) = (Methods[g % 4], Sizes[g / 4 % 5], g / perSeed % subsamples, g / perSeed / subsamples);
            var key = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(g)));
            var json = $$"""{"dataset":{"kind":"e2e"},"split":"default","method":{"name":"{{method}}"},"size":{{size}},"subsample":{{subsample}},"seed":{{seed}},"training":{"max_steps":2000,"learning_rate":5e-05,"batch_size":5},"decoding":{"strategy":"beam","beam_size":5} }""";
            return new CellDescriptor(key, "e2e", "default", method, size, subsample, seed, json);
        }).ToList();
        var sweep = new SweepRecord(sweepId, $"bench{cells}", "name: bench", "h", DateTimeOffset.UtcNow.AddHours(-cells / 100.0), cells)
        {
            Metrics = ["bleu", "rouge"],
        };
        await store.SaveSweepAsync(sweep, descriptors);

        // The results in one transaction (through the store, one transaction per result, 100,000 take minutes): the rows a worker's
        // UpsertResultAsync writes, with a 1% failure rate.
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dataDir, "results.db")}");
        await connection.OpenAsync();
        await using var tx = (Microsoft.Data.Sqlite.SqliteTransaction)await connection.BeginTransactionAsync();
        await using var result = connection.CreateCommand();
        result.Transaction = tx;
        result.CommandText = """
            INSERT INTO cell_results (cell_key, attempt, status, error, worker_id, device, wall_seconds, peak_memory_bytes, provenance_json, finished_at)
            VALUES ($k, 1, $status, $error, $worker, 'cpu', $wall, 1073741824, '{"manifest_hash":"m","dataset_hash":"d"}', $finished)
            """;
        await using var metric = connection.CreateCommand();
        metric.Transaction = tx;
        metric.CommandText = "INSERT INTO cell_metrics (cell_key, metric, value) VALUES ($k, $m, $v)";
        foreach (var (cell, g) in descriptors.Select((c, g) => (c, g)))
        {
            var failed = g % 100 == 99;
            result.Parameters.Clear();
            result.Parameters.AddWithValue("$k", cell.CellKey);
            result.Parameters.AddWithValue("$status", failed ? CellStatus.Failed : CellStatus.Succeeded);
            result.Parameters.AddWithValue("$error", failed ? "out of memory" : DBNull.Value);
            result.Parameters.AddWithValue("$worker", "w" + g % 8);
            result.Parameters.AddWithValue("$wall", 60.0 + g % 17);
            result.Parameters.AddWithValue("$finished", sweep.SubmittedAt.ToUniversalTime().AddSeconds(36 * (g + 1)));
            await result.ExecuteNonQueryAsync();
            if (failed)
            {
                continue;
            }

            var bleu = 20 + g % 37 * 0.5 + g % 4;
            foreach (var (name, value) in new[] { ("bleu", bleu), ("rougeL", bleu + 15) })
            {
                metric.Parameters.Clear();
                metric.Parameters.AddWithValue("$k", cell.CellKey);
                metric.Parameters.AddWithValue("$m", name);
                metric.Parameters.AddWithValue("$v", value);
                await metric.ExecuteNonQueryAsync();
            }
        }

        await tx.CommitAsync();
        return sweepId;
    }

    /// <summary>
    /// The live page's re-reads: the results fingerprint query (asked by every request and every open stream's poll, read at most
    /// once a second per sweep), and the progress right after a result is written, when the changed fingerprint makes the server
    /// read the sweep's cells again (here a failed cell's rerun succeeding, written through the store as a worker writes it).
    /// </summary>
    private static async Task TimeRereadsAsync(HttpClient http, string api, string database, string sweepId, int cells, int iterations)
    {
        await using var store = ResultStores.Sqlite(database);
        var fingerprint = new List<double>();
        for (var i = 0; i < iterations + 2; i++)
        {
            var clock = Stopwatch.StartNew();
            await store.GetResultsVersionAsync(sweepId);
            if (i >= 2)
            {
                fingerprint.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {cells:N0} | the results fingerprint query (`GetResultsVersionAsync`; at most once a second per sweep) | {P(fingerprint, 0.5):F0} | {P(fingerprint, 0.95):F0} | |"));

        var (rereads, reaggregates) = (new List<double>(), new List<double>());
        for (var i = 0; i < 3; i++)
        {
            // Cell 100·i + 99 is one of the 1% stored as failed.
            var key = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(100 * i + 99)));
            var written = await store.WriteResultAsync(new CellResultRecord(key, 2, CellStatus.Succeeded, new Dictionary<string, double> { ["bleu"] = 30, ["rougeL"] = 45 },
                null, "w-rerun", "cpu", 60, 1L << 30, """{"manifest_hash":"m","dataset_hash":"d"}""", [], DateTimeOffset.UtcNow));
            if (!written.Written)
            {
                throw new InvalidOperationException($"the rerun's result for {key} was not written ({written.Status} attempt {written.Attempt})");
            }

            await Task.Delay(TimeSpan.FromSeconds(1.1)); // past the fingerprint's reuse
            var clock = Stopwatch.StartNew();
            (await http.GetAsync(api)).EnsureSuccessStatusCode();
            rereads.Add(clock.Elapsed.TotalMilliseconds);

            // The results view then: the results grain aggregates again at the new fingerprint.
            clock.Restart();
            (await http.GetAsync(api + "/results?metric=bleu&by=dataset,split,method,size")).EnsureSuccessStatusCode();
            reaggregates.Add(clock.Elapsed.TotalMilliseconds);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {cells:N0} | `/api/sweeps/ID` after a result is written (the fingerprint changed: the sweep's cells are read again; 3 writes, median and max) | {P(rereads, 0.5):F0} | {rereads.Max():F0} | |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {cells:N0} | `/api/sweeps/ID/results?metric=bleu&by=dataset,split,method,size` after a result is written (aggregated again; median and max) | {P(reaggregates, 0.5):F0} | {reaggregates.Max():F0} | |"));
    }

    private static async Task<(List<double> Times, long Bytes)> TimeRequestAsync(HttpClient http, string path, int iterations)
    {
        long bytes = 0;
        var times = new List<double>();
        for (var i = 0; i < iterations + 2; i++)
        {
            var clock = Stopwatch.StartNew();
            if (path.EndsWith("/events", StringComparison.Ordinal))
            {
                // The live stream: the time to its first event.
                using var response = await http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                await reader.ReadLineAsync();
                bytes = (await reader.ReadLineAsync())!.Length;
            }
            else
            {
                using var response = await http.GetAsync(path);
                response.EnsureSuccessStatusCode();
                bytes = (await response.Content.ReadAsByteArrayAsync()).LongLength;
            }

            if (i >= 2)
            {
                times.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        return (times, bytes);
    }

    private static double P(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Count - 1, Math.Ceiling(p * sorted.Count) - 1)];
    }

    private static string Option(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
