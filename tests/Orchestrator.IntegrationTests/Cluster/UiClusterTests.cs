using System.Globalization;
using System.Text.Json;
using Orchestrator.TestKit;
using Orchestrator.TestKit.Browser;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// The results page of a real cluster: a coordinator silo process started with <c>--ui-port</c>, a worker silo process, a
/// sweep submitted with the command line to PostgreSQL. The page the coordinator serves follows the sweep while the worker
/// trains it and then shows exactly what <c>orchestrator results --cluster</c> reports.
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class UiClusterTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private const string Name = "it-ui-cluster";

    private const string Spec = $$"""
        name: {{Name}}
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 3
        model:
          preset: test
        methods: [finetune, lora]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 6
          warmup_steps: 1
          eval_every: 3
        decoding:
          strategy: greedy
          max_new_tokens: 5
          min_new_tokens: 1
        metrics: [bleu, rouge]
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("ui-cluster-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task The_coordinators_results_page_follows_a_cluster_sweep_and_shows_what_orchestrator_results_reports()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await using var cluster = await LocalCluster.CreateAsync(postgres, "uicluster");
        var port = DashboardTests.FreePort();
        var coordinator = await cluster.StartSiloAsync("coordinator", "coordinator", "--ui-port", port.ToString(CultureInfo.InvariantCulture));
        Assert.Contains($"results-page=http://127.0.0.1:{port}/", coordinator.Log, StringComparison.Ordinal);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal("[]", (await http.GetStringAsync("api/sweeps", cts.Token)).Trim());

        await cluster.StartSiloAsync("worker-1", "worker");
        var spec = Path.Combine(_dir.FullName, "ui.yaml");
        await File.WriteAllTextAsync(spec, Spec, cts.Token);
        string[] connect = ["--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId];
        var (submitted, stdout, stderr) = await CliCapture.RunAsync(["submit", spec, .. connect]);
        Assert.True(submitted == 0, stderr + stdout);
        var sweepId = (await cluster.Store.FindSweepAsync(Name))!.SweepId;

        // The page's counts while the worker trains: listed at once, never going back, until every cell is done.
        var seen = new List<int>();
        JsonElement listed;
        while (true)
        {
            using var list = JsonDocument.Parse(await http.GetStringAsync("api/sweeps", cts.Token));
            listed = Assert.Single(list.RootElement.EnumerateArray()).Clone();
            Assert.Equal((sweepId, Name, 4), (listed.GetProperty("sweep_id").GetString(), listed.GetProperty("name").GetString(), listed.GetProperty("total").GetInt32()));
            var done = listed.GetProperty("done").GetInt32();
            if (seen.Count == 0 || seen[^1] != done)
            {
                seen.Add(done);
            }

            if (listed.GetProperty("complete").GetBoolean())
            {
                break;
            }

            Assert.False(cts.IsCancellationRequested, $"the sweep did not finish: {listed}\n{cluster.Logs()}");
            await Task.Delay(250, cts.Token);
        }

        output.WriteLine($"done counts seen on the page: {string.Join(", ", seen)}");
        Assert.Equal(seen.Order(), seen);
        Assert.Equal((4, 0, 0), (listed.GetProperty("done").GetInt32(), listed.GetProperty("failed").GetInt32(), listed.GetProperty("blocked").GetInt32()));
        var rows = await cluster.ResultRowsAsync(sweepId);
        Assert.Equal((4L, 4L, "worker-1"), (rows.Rows, rows.Succeeded, string.Join(",", rows.Workers)));

        // Each cell as the page lists it as soon as the sweep shows complete: done, trained by the worker, with the scores stored in
        // PostgreSQL (the worker stores a result before it completes the lease, so the page must not show a done cell without them).
        using (var cells = JsonDocument.Parse(await http.GetStringAsync($"api/sweeps/{sweepId}/cells?limit=100", cts.Token)))
        {
            var listedCells = cells.RootElement.GetProperty("cells").EnumerateArray().ToList();
            var stored = await cluster.Store.GetSweepCellsAsync(sweepId);
            Assert.Equal(stored.Select(c => c.Cell.CellKey).Order(StringComparer.Ordinal),
                listedCells.Select(c => c.GetProperty("key").GetString()!).Order(StringComparer.Ordinal));
            Assert.All(listedCells, c => Assert.Equal(("done", "worker-1"), (c.GetProperty("state").GetString(), c.GetProperty("worker").GetString())));
            var bleu = stored.ToDictionary(c => c.Cell.CellKey, c => c.Result!.Metrics["bleu"], StringComparer.Ordinal);
            Assert.All(listedCells, c => Assert.Equal(bleu[c.GetProperty("key").GetString()!], c.GetProperty("metrics").GetProperty("bleu").GetDouble()));
        }

        // The results, from the coordinator's page and from the command line against the same cluster.
        foreach (var (metric, by) in new[] { ((string?)null, (string?)null), ("bleu", "method,size"), ("rougeL", "method") })
        {
            List<string> args = ["results", Name, "--format", "json", .. connect];
            var query = new List<string>();
            if (metric is not null) { args.AddRange(["--metric", metric]); query.Add("metric=" + metric); }
            if (by is not null) { args.AddRange(["--by", by]); query.Add("by=" + by); }
            var (exit, cli, error) = await CliCapture.RunAsync([.. args]);
            Assert.True(exit == 0, error);
            Assert.Equal(cli, await http.GetStringAsync($"api/sweeps/{sweepId}/results?{string.Join('&', query)}", cts.Token));
        }

        // The page itself in a real browser: its results table shows the command line's points.
        var (_, json, _) = await CliCapture.RunAsync(["results", Name, "--metric", "bleu", "--by", "method,size", "--format", "json", .. connect]);
        var expected = JsonDocument.Parse(json).RootElement.GetProperty("points").EnumerateArray()
            .Select(p => (p.GetProperty("method").GetString(), p.GetProperty("n").GetInt32(), p.GetProperty("mean").GetDouble())).ToList();
        Assert.Equal(2, expected.Count);
        await using var browser = await Chromium.StartAsync();
        await using var page = await browser.NewPageAsync();
        await page.NavigateAsync($"http://127.0.0.1:{port}/#/sweep/{sweepId}/results?metric=bleu&by=method,size");
        await page.WaitForAsync("document.getElementById('metric')?.value === 'bleu' && document.querySelector('#results-table tbody tr')", TimeSpan.FromMinutes(1));
        var shown = await page.EvaluateAsync<List<string[]>>(
            "[...document.querySelectorAll('#results-table tbody tr')].map(tr => [tr.dataset.method, tr.dataset.n, tr.dataset.mean])");
        Assert.Equal(expected, shown.Select(r => ((string?)r[0], int.Parse(r[1], CultureInfo.InvariantCulture), double.Parse(r[2], CultureInfo.InvariantCulture))));
        Assert.True(page.Errors.Count == 0, string.Join("\n", page.Errors));
    }
}
