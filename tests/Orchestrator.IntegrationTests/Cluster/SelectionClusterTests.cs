using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// A spec with <c>selection:</c> on a real cluster (PostgreSQL, a coordinator and a worker silo as processes): <c>submit</c>
/// without <c>--watch</c> refuses it before anything is stored; <c>submit --watch</c> trains the selection cells, then the grid
/// at the rate of the lower stored dev loss.
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
    public async Task Submit_refuses_a_selection_without_watch_and_with_watch_trains_the_selection_then_the_chosen_grid()
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, "selection");
        await cluster.StartSiloAsync("coordinator", "coordinator");
        await cluster.StartSiloAsync("worker-1", "worker");
        var spec = Path.Combine(_dir.FullName, "select.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        string[] connect = ["--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId];

        var (refused, _, why) = await CliCapture.RunAsync(["submit", spec, .. connect]);
        Assert.Equal(2, refused);
        Assert.Contains("add --watch", why, StringComparison.Ordinal);
        Assert.Null(await cluster.Store.FindSweepAsync("it-select-cluster"));

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
}
