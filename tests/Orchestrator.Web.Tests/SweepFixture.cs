using System.Globalization;
using System.Net.Http.Headers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Cli;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Web.Tests;

/// <summary>
/// A real small sweep, trained for real by an embedded host (in-process silo, worker, SQLite), with the results page served
/// beside it on a free loopback port: 2 methods × 2 sizes × 1 subsample × 2 seeds = 8 cells. Started once for the collection.
/// </summary>
public sealed class SweepFixture : IAsyncLifetime
{
    public const string Name = "web-it";

    public static string Spec(string name, string seeds, int steps = 12) => $$"""
        name: {{name}}
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 6
        model:
          preset: test
        methods: [finetune, lora]
        grid:
          sizes: [10, 20]
          subsamples: 1
          seeds: [{{seeds}}]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: {{steps}}
          warmup_steps: 2
          eval_every: {{steps / 3}}
        decoding:
          strategy: greedy
          max_new_tokens: 8
          min_new_tokens: 1
        metrics: [bleu, rouge]
        """;

    public DirectoryInfo Dir { get; } = Directory.CreateTempSubdirectory("orch-web-");

    public IHost Host { get; private set; } = null!;

    public WebUi Page { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public SweepPlan Plan { get; private set; } = null!;

    public IResultStore Store => Host.Services.GetRequiredService<IResultStore>();

    public IGrainFactory Grains => Host.Services.GetRequiredService<IGrainFactory>();

    public string BaseUrl => Page.LocalUrl.TrimEnd('/');

    private Task<Orchestrator.TestKit.Browser.Chromium>? _browser;

    /// <summary>The one headless Chromium of the page tests, started on first use (the API tests need none).</summary>
    public Task<Orchestrator.TestKit.Browser.Chromium> BrowserAsync() => _browser ??= Orchestrator.TestKit.Browser.Chromium.StartAsync();

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        Host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = Dir.FullName, WorkerSlots = 1 });
        await Host.StartAsync(cts.Token);
        Page = await WebUi.StartAsync(new WebUiOptions { Port = 0 }, Host.Services, cts.Token);
        Http = new HttpClient { BaseAddress = new Uri(Page.LocalUrl), Timeout = TimeSpan.FromMinutes(2) };
        Plan = SweepPlanner.PlanText(Spec(Name, "0, 1"), OrchestratorVocabulary.Default, Dir.FullName);
        await SweepSubmitter.SubmitAsync(Grains, Plan);
        var final = await SweepSubmitter.WaitAsync(Grains, Plan.SweepId, null, TimeSpan.FromMilliseconds(250), cts.Token);
        if (final.Done != Plan.Cells.Count)
        {
            throw new InvalidOperationException($"the fixture sweep did not finish: {final.Done}/{Plan.Cells.Count} done, {final.Failed} failed");
        }

        await SnapshotDatabaseAsync(Path.Combine(Dir.FullName, "results.db"), Path.Combine(CliDir.FullName, "results.db"));
    }

    private Task<SweepPlan>? _selection;

    /// <summary>
    /// A second sweep, run on first use: lora with <c>selection: {learning_rate: [1.0e-4, 5.0e-3]}</c> on one size and seed
    /// (2 selection cells, then 1 grid cell at the chosen rate), as <c>run</c> submits it: the sweep grain makes the choice.
    /// </summary>
    public Task<SweepPlan> SelectionPlanAsync() => _selection ??= RunSelectionAsync();

    private async Task<SweepPlan> RunSelectionAsync()
    {
        var yaml = Spec("web-select", "0", steps: 6).Replace("methods: [finetune, lora]", "methods: [lora]").Replace("sizes: [10, 20]", "sizes: [10]") +
                   "\nselection: {learning_rate: [1.0e-4, 5.0e-3]}\n";
        var plan = SweepPlanner.PlanText(yaml, OrchestratorVocabulary.Default, Dir.FullName);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        async Task WaitAsync(string id, CancellationToken ct) => await SweepSubmitter.WaitAsync(Grains, id, null, TimeSpan.FromMilliseconds(200), ct);
        await SweepSubmitter.SubmitSelectingAsync(Grains, plan, maxCells: 1000);
        await WaitAsync(plan.SweepId, cts.Token);
        return plan;
    }

    private Task<SweepPlan>? _staged;

    /// <summary>
    /// A staged sweep, run on first use: stage <c>src</c> (lora, 1 cell), stage <c>mid</c> (lora needing <c>src</c>, 1 cell), and
    /// the main stage with lora needing <c>mid</c> and <c>src</c> and finetune needing nothing (2 cells): three stages, three edges.
    /// </summary>
    public Task<SweepPlan> StagedPlanAsync() => _staged ??= RunStagedAsync();

    public const string StagedSpec = """
        name: web-staged
        stages:
          - name: src
            dataset: {kind: synthetic-e2e, options: {mrs: 60, seed: 5}, eval_limit: 2}
            methods: [lora]
            grid: {sizes: [10], subsamples: 1, seeds: [0]}
          - name: mid
            dataset: {kind: synthetic-e2e, options: {mrs: 60, seed: 7}, eval_limit: 2}
            methods: [{name: lora, needs: [src]}]
            grid: {sizes: [10], subsamples: 1, seeds: [0]}
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 2
        model:
          preset: test
        methods:
          - {name: lora, needs: [mid, src]}
          - finetune
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 4
          warmup_steps: 1
          eval_every: 2
        decoding:
          strategy: greedy
          max_new_tokens: 4
          min_new_tokens: 1
        """;

    private async Task<SweepPlan> RunStagedAsync()
    {
        var plan = SweepPlanner.PlanText(StagedSpec, OrchestratorVocabulary.Default, Dir.FullName);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await SweepSubmitter.SubmitAsync(Grains, plan);
        await SweepSubmitter.WaitAsync(Grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        return plan;
    }

    /// <summary>
    /// A copy of the finished sweep's database in a data directory of its own: the fixture's host holds its data directory
    /// (one embedded process per folder), so the command line reads the same rows from here.
    /// </summary>
    public DirectoryInfo CliDir { get; } = Directory.CreateTempSubdirectory("orch-web-cli-");

    /// <summary>The real command line, in process, on a copy of the fixture's database (its own embedded silo beside the fixture's).</summary>
    public async Task<string> CliAsync(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        var (outText, errText) = (new StringWriter(CultureInfo.InvariantCulture), new StringWriter(CultureInfo.InvariantCulture));
        Console.SetOut(outText);
        Console.SetError(errText);
        int exit;
        try
        {
            exit = await CliApp.RunAsync([.. args, "--data-dir", CliDir.FullName]);
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }

        Assert.True(exit == 0, $"orchestrator {string.Join(' ', args)} exited {exit}: {errText}");
        return outText.ToString();
    }

    /// <summary>A consistent copy of a live SQLite database (<c>VACUUM INTO</c> reads one snapshot, WAL included).</summary>
    private static async Task SnapshotDatabaseAsync(string from, string to)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={from};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "VACUUM INTO $to";
        command.Parameters.AddWithValue("$to", to);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<string> GetStringAsync(string path, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return body;
    }

    public async Task DisposeAsync()
    {
        if (_browser is { IsCompletedSuccessfully: true })
        {
            await (await _browser).DisposeAsync();
        }

        Http?.Dispose();
        if (Page is not null)
        {
            await Page.DisposeAsync();
        }

        if (Host is not null)
        {
            await Host.StopAsync(CancellationToken.None);
            Host.Dispose();
        }

        foreach (var dir in new[] { Dir, CliDir })
        {
            try
            {
                dir.Delete(recursive: true);
            }
            catch (IOException)
            {
                // a file still held by a closing pool; the temp folder is cleaned by the OS
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SweepCollection : ICollectionFixture<SweepFixture>
{
    public const string Name = "sweep";
}
