using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// A spec with <c>selection:</c> on a real cluster (PostgreSQL, a coordinator and a worker silo as processes): <c>submit --watch</c>
/// trains the selection cells, then the grid at the rate of the lower stored dev loss; <c>submit</c> without <c>--watch</c> returns
/// at once and the cluster makes the choice and queues the grid itself, also across a coordinator restart between the phases.
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class SelectionClusterTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private const string Spec = """
        name: it-select-cluster
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 2
        model:
          preset: test
        methods:
          - lora
          - {name: finetune, selection: none}
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0]
        selection: {learning_rate: [1.0e-4, 5.0e-3]}
        training:
          learning_rate: 1.0e-3
          batch_size: 5
          max_steps: 6
          warmup_steps: 1
          eval_every: 3
        decoding:
          strategy: greedy
          max_new_tokens: 4
          min_new_tokens: 1
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("selection-cluster-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Submit_with_watch_trains_the_selection_then_the_chosen_grid()
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, "selection");
        await cluster.StartSiloAsync("coordinator", "coordinator");
        await cluster.StartSiloAsync("worker-1", "worker");
        var spec = Path.Combine(_dir.FullName, "select.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        string[] connect = ["--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId];

        var (exit, stdout, stderr) = await CliCapture.RunAsync(["submit", spec, .. connect, "--watch"]);
        output.WriteLine(stdout);
        Assert.True(exit == 0, stderr + stdout);

        var sweep = (await cluster.Store.FindSweepAsync("it-select-cluster"))!;
        var rows = await cluster.Store.GetSweepCellsAsync(sweep.SweepId);
        Assert.All(rows, r => Assert.Equal(CellStatus.Succeeded, r.Result?.Status));
        Assert.Equal(["finetune", "lora", "selection/lora", "selection/lora"], rows.Select(r => r.Cell.Method).Order(StringComparer.Ordinal));
        Assert.Equal(4, (await cluster.Store.GetTrainingRunsAsync(rows.Select(r => r.Cell.CellKey))).Count);

        var rates = rows.Where(r => r.Cell.Method == "selection/lora").ToDictionary(
            r => CellDefinition.FromJson(r.Cell.CellJson).Training.LearningRate,
            r => JsonDocument.Parse(r.Result!.ProvenanceJson).RootElement.GetProperty("best_dev_loss").GetDouble());
        var chosen = rates.MinBy(r => r.Value).Key;
        Assert.Equal(chosen, CellDefinition.FromJson(rows.Single(r => r.Cell.Method == "lora").Cell.CellJson).Training.LearningRate);
        Assert.Equal(1.0e-3, CellDefinition.FromJson(rows.Single(r => r.Cell.Method == "finetune").Cell.CellJson).Training.LearningRate);
        Assert.Contains($"lora: chosen learning_rate={chosen.ToString(System.Globalization.CultureInfo.InvariantCulture)}", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_without_watch_returns_and_the_cluster_chooses_and_queues_the_grid_once_across_a_coordinator_restart()
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, "selection-detached");
        await cluster.StartSiloAsync("coordinator", "coordinator");
        await cluster.StartSiloAsync("worker-1", "worker");
        var spec = Path.Combine(_dir.FullName, "detached.yaml");
        await File.WriteAllTextAsync(spec, Spec.Replace("it-select-cluster", "it-select-detached", StringComparison.Ordinal));
        string[] connect = ["--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId];

        // The command returns once the sweep is queued: nothing of it stays attached.
        var (exit, stdout, stderr) = await CliCapture.RunAsync(["submit", spec, .. connect]);
        Assert.True(exit == 0, stderr + stdout);
        var sweep = (await cluster.Store.FindSweepAsync("it-select-detached"))!;
        Assert.Equal(sweep.SweepId, stdout.Trim());
        Assert.Equal(["finetune", "selection/lora", "selection/lora"],
            (await cluster.Store.GetSweepCellsAsync(sweep.SweepId)).Select(r => r.Cell.Method).Order(StringComparer.Ordinal));

        // Between the phases (the selection cells have results; the coordinator checks for a due choice every few seconds) the
        // coordinator dies; its successor carries the sweep on.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while ((await cluster.Store.GetSweepCellsAsync(sweep.SweepId)).Count(r => r.Cell.Method == "selection/lora" && r.Result is not null) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the selection cells did not finish\n" + cluster.Logs());
            await Task.Delay(100);
        }

        var early = (await cluster.Store.GetSweepCellsAsync(sweep.SweepId)).Any(r => r.Cell.Method == "lora");
        cluster.Silos.Single(s => s.Name == "coordinator").Kill();
        output.WriteLine(early ? "the coordinator was killed after it had queued the grid" : "the coordinator was killed before it queued the grid");
        await cluster.StartSiloAsync("coordinator-2", "coordinator");

        var rows = await cluster.Store.GetSweepCellsAsync(sweep.SweepId);
        while (rows.Count < 4 || rows.Any(r => r.Result is null))
        {
            Assert.True(DateTime.UtcNow < deadline, "the chosen grid did not finish\n" + cluster.Logs());
            await Task.Delay(250);
            rows = await cluster.Store.GetSweepCellsAsync(sweep.SweepId);
        }

        Assert.All(rows, r => Assert.Equal(CellStatus.Succeeded, r.Result?.Status));
        Assert.Equal(["finetune", "lora", "selection/lora", "selection/lora"], rows.Select(r => r.Cell.Method).Order(StringComparer.Ordinal));
        var runs = await cluster.Store.GetTrainingRunsAsync(rows.Select(r => r.Cell.CellKey));
        Assert.Equal(4, runs.Count);

        // The chosen rate is the one of the lower dev loss stored by the selection cells, and the grid cell is the one a spec with
        // that rate written by hand gives.
        var rates = rows.Where(r => r.Cell.Method == "selection/lora").ToDictionary(
            r => CellDefinition.FromJson(r.Cell.CellJson).Training.LearningRate,
            r => JsonDocument.Parse(r.Result!.ProvenanceJson).RootElement.GetProperty("best_dev_loss").GetDouble());
        var chosen = rates.MinBy(r => r.Value).Key;
        var text = chosen.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        var byHand = Orchestrator.Data.SweepPlanner.PlanText(Spec
                .Replace("selection: {learning_rate: [1.0e-4, 5.0e-3]}\n", "", StringComparison.Ordinal)
                .Replace("  - {name: finetune, selection: none}\n", "", StringComparison.Ordinal)
                .Replace("learning_rate: 1.0e-3", $"learning_rate: {text}", StringComparison.Ordinal),
            Orchestrator.Worker.OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(byHand.Cells.Where(c => c.Method == "lora").Select(c => c.Key), rows.Where(r => r.Cell.Method == "lora").Select(r => r.Cell.CellKey));
        var stored = Assert.Single(await cluster.Store.GetSelectionsAsync(sweep.SweepId));
        Assert.Equal(("lora", text), (stored.Method, double.Parse(stored.Chosen["learning_rate"], System.Globalization.CultureInfo.InvariantCulture).ToString("R", System.Globalization.CultureInfo.InvariantCulture)));

        var (statusExit, status, statusErr) = await CliCapture.RunAsync(["status", sweep.SweepId, .. connect]);
        output.WriteLine(status);
        Assert.True(statusExit == 0, statusErr + status);
        Assert.Contains($"lora: chosen learning_rate={stored.Chosen["learning_rate"]}", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_counts_the_grid_that_waits_for_its_choice_and_the_sweep_is_not_complete_before_it_joins()
    {
        // No worker: the selection cells stay pending, so the chosen grid certainly waits.
        await using var cluster = await LocalCluster.CreateAsync(postgres, "selection-awaiting");
        await cluster.StartSiloAsync("coordinator", "coordinator");
        var spec = Path.Combine(_dir.FullName, "awaiting.yaml");
        await File.WriteAllTextAsync(spec, Spec.Replace("it-select-cluster", "it-select-awaiting", StringComparison.Ordinal));
        string[] connect = ["--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId];
        var (exit, stdout, stderr) = await CliCapture.RunAsync(["submit", spec, .. connect]);
        Assert.True(exit == 0, stderr + stdout);

        var (statusExit, json, statusErr) = await CliCapture.RunAsync(["status", "it-select-awaiting", .. connect, "--format", "json"]);
        Assert.True(statusExit == 0, statusErr + json);
        var root = JsonDocument.Parse(json).RootElement;
        Assert.Equal(3, root.GetProperty("total").GetInt32());            // 2 selection cells + the finetune grid cell
        Assert.Equal(1, root.GetProperty("awaiting_choice").GetInt32());  // lora's grid: 1 size × 1 subsample × 1 seed
        Assert.False(root.GetProperty("complete").GetBoolean());
        Assert.Equal("active", root.GetProperty("status").GetString());

        var (_, text, _) = await CliCapture.RunAsync(["status", "it-select-awaiting", .. connect]);
        Assert.Contains("3 cells — 0 done, 0 running, 3 pending, 0 failed; 1 more once the selection has chosen", text, StringComparison.Ordinal);
    }
}
