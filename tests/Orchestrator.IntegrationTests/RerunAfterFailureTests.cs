using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.TestKit;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// A cell with <c>max_attempts: 2</c> fails twice (its data file is gone, as on an unmounted volume); the file comes back and
/// the cell is run again — by <c>rerun-failed</c>, by repeating <c>run</c>, or by a new sweep that shares it. The success is
/// stored (attempt 3: numbers are never reused), and <c>status</c>, <c>results</c> and <c>export</c> all say so. Real training,
/// real command line, embedded mode.
/// </summary>
public sealed class RerunAfterFailureTests : IDisposable
{
    private const string Spec = """
        name: comeback
        dataset: {kind: jsonl, path: source.jsonl, eval_limit: 3}
        model:
          preset: test
        methods: [finetune]
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
          max_new_tokens: 6
          min_new_tokens: 1
        execution:
          max_attempts: 2
          lease_seconds: 30
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-comeback-");

    public RerunAfterFailureTests()
    {
        TestData.WritePlaces(SourcePath, 30);
    }

    private string SourcePath => Path.Combine(_dir.FullName, "source.jsonl");

    public void Dispose() => _dir.Delete(recursive: true);

    private Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) =>
        CliCapture.RunAsync([.. args, "--data-dir", _dir.FullName]);

    /// <summary>Submits the spec and lets its only cell fail twice with the data file gone; returns the plan.</summary>
    private async Task<SweepPlan> FailTwiceAsync(CancellationToken ct)
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        var saved = await File.ReadAllBytesAsync(SourcePath, ct);
        File.Delete(SourcePath);
        using (var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, WorkerSlots = 1 }))
        {
            await host.StartAsync(ct);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            await SweepSubmitter.SubmitAsync(grains, plan);
            var first = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), ct);
            Assert.Equal((0, 1), (first.Done, first.Failed));
            await host.StopAsync(CancellationToken.None);
        }

        var (_, row) = Assert.Single(await StoredAsync(plan.SweepId));
        Assert.Equal((CellStatus.Failed, 2), (row!.Status, row.Attempt));
        await File.WriteAllBytesAsync(SourcePath, saved, ct);   // the volume is mounted again
        return plan;
    }

    private async Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> StoredAsync(string sweepId)
    {
        await using var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath);
        return await store.GetSweepCellsAsync(sweepId);
    }

    /// <summary>The database row, <c>status</c>, <c>results</c> and <c>export</c> all report one success at attempt 3.</summary>
    private async Task AssertAllAgreeOnTheSuccessAsync(string sweep)
    {
        var (_, row) = Assert.Single(await StoredAsync(sweep));
        Assert.Equal((CellStatus.Succeeded, 3), (row!.Status, row.Attempt));
        Assert.Null(row.Error);

        var (exit, json, err) = await CliAsync("status", sweep, "--format", "json");
        Assert.True(exit == 0, err);
        using (var status = JsonDocument.Parse(json))
        {
            var root = status.RootElement;
            Assert.Equal((1, 0, true), (root.GetProperty("done").GetInt32(), root.GetProperty("failed").GetInt32(), root.GetProperty("complete").GetBoolean()));
            var cell = Assert.Single(root.GetProperty("cells").EnumerateArray());
            Assert.Equal(("done", 3), (cell.GetProperty("state").GetString(), cell.GetProperty("attempts").GetInt32()));
        }

        (exit, json, err) = await CliAsync("results", sweep, "--format", "json");
        Assert.True(exit == 0, err);
        using (var results = JsonDocument.Parse(json))
        {
            var point = results.RootElement.GetProperty("points").EnumerateArray().First(p => p.GetProperty("metric").GetString() == "bleu");
            Assert.Equal((1, 0, true), (point.GetProperty("n").GetInt32(), point.GetProperty("failed").GetInt32(), point.GetProperty("complete").GetBoolean()));
        }

        var exported = Path.Combine(_dir.FullName, $"export-{Guid.NewGuid():N}.jsonl");
        (exit, _, err) = await CliAsync("export", sweep, "--format", "jsonl", "--out", exported);
        Assert.True(exit == 0, err);
        var line = JsonDocument.Parse(Assert.Single(await File.ReadAllLinesAsync(exported))).RootElement;
        Assert.Equal((CellStatus.Succeeded, 3), (line.GetProperty("status").GetString(), line.GetProperty("attempt").GetInt32()));
    }

    [Fact]
    public async Task Rerun_failed_after_the_data_comes_back_stores_the_success_and_status_results_and_export_agree()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var plan = await FailTwiceAsync(cts.Token);

        var (exit, _, err) = await CliAsync("rerun-failed", plan.SweepId);
        Assert.True(exit == 0, err);
        await AssertAllAgreeOnTheSuccessAsync(plan.SweepId);
    }

    [Fact]
    public async Task Repeating_run_of_the_failed_spec_stores_the_success()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var plan = await FailTwiceAsync(cts.Token);
        var spec = Path.Combine(_dir.FullName, "comeback.yaml");
        await File.WriteAllTextAsync(spec, Spec, cts.Token);
        var (exit, _, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName);
        Assert.True(exit == 0, err);
        await AssertAllAgreeOnTheSuccessAsync(plan.SweepId);
    }

    [Fact]
    public async Task A_new_sweep_sharing_the_failed_cell_stores_the_success_and_repeating_run_trains_nothing_more()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var plan = await FailTwiceAsync(cts.Token);

        // A new sweep (another name) with the same cell: the cell trains again on top of its two attempts.
        var spec = Path.Combine(_dir.FullName, "again.yaml");
        await File.WriteAllTextAsync(spec, Spec.Replace("name: comeback", "name: comeback-again"), cts.Token);
        var (exit, _, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName);
        Assert.True(exit == 0, err);
        var again = SweepPlanner.PlanText(Spec.Replace("name: comeback", "name: comeback-again"), OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(plan.Cells.Single().Key, again.Cells.Single().Key);
        await AssertAllAgreeOnTheSuccessAsync(again.SweepId);
        await AssertAllAgreeOnTheSuccessAsync(plan.SweepId);    // the first sweep sees the same row

        // Repeating `run` of the first spec trains nothing more: the row stays attempt 3.
        spec = Path.Combine(_dir.FullName, "comeback.yaml");
        await File.WriteAllTextAsync(spec, Spec, cts.Token);
        (exit, _, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName);
        Assert.True(exit == 0, err);
        await AssertAllAgreeOnTheSuccessAsync(plan.SweepId);
    }
}
