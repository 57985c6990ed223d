using Orchestrator.Results;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// A worker silo finds its data directory by the CLI's rule: a base pretrained by <c>orchestrator pretrain</c> into
/// <c>$ORCHESTRATOR_HOME</c> is loaded by a worker started with the same <c>$ORCHESTRATOR_HOME</c>, never pretrained again
/// (it used to look in <c>.orchestrator/</c> of its working directory and pretrained the base a second time).
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class WorkerDataDirectoryTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private const string Spec = """
        name: it-worker-home
        dataset:
          kind: synthetic-e2e
          options: {mrs: 40, seed: 3}
          eval_limit: 2
        model:
          preset: test
          pretrain: {corpus: synthetic, documents: 200, steps: 3, batch_size: 2, sequence_length: 32, vocab_size: 300}
        methods: [lora]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0]
        training:
          learning_rate: 1.0e-3
          batch_size: 5
          max_steps: 2
          warmup_steps: 1
          eval_every: 2
        decoding:
          strategy: greedy
          max_new_tokens: 2
          min_new_tokens: 1
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("worker-home-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task A_worker_loads_the_base_pretrained_into_ORCHESTRATOR_HOME_instead_of_pretraining_it_again()
    {
        var home = Directory.CreateDirectory(Path.Combine(_dir.FullName, "home")).FullName;
        var spec = Path.Combine(_dir.FullName, "home.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var (exit, stdout, stderr) = await CliCapture.RunAsync(["pretrain", "--spec", spec, "--data-dir", home]);
        Assert.True(exit == 0, stderr + stdout);
        var bases = Directory.GetDirectories(Path.Combine(home, "bases"));
        var pretrained = Assert.Single(bases);

        await using var cluster = await LocalCluster.CreateAsync(postgres, "worker-home");
        await cluster.StartSiloAsync("coordinator", "coordinator");
        var worker = await cluster.StartSiloAsync("worker-1", "worker", new Dictionary<string, string> { ["ORCHESTRATOR_HOME"] = home });
        Assert.Contains($"data={home} ($ORCHESTRATOR_HOME)", worker.Log, StringComparison.Ordinal);

        (exit, stdout, stderr) = await CliCapture.RunAsync(["submit", spec, "--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId]);
        Assert.True(exit == 0, stderr + stdout);
        var sweep = (await cluster.Store.FindSweepAsync("it-worker-home"))!;
        var rows = await cluster.WaitForStoredResultsAsync(sweep.SweepId, TimeSpan.FromMinutes(2));

        output.WriteLine(worker.Log);
        Assert.Equal(CellStatus.Succeeded, Assert.Single(rows).Result!.Status);
        Assert.Contains($"from {pretrained}", worker.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("Pretraining base", worker.Log, StringComparison.Ordinal);
        Assert.Equal(bases, Directory.GetDirectories(Path.Combine(home, "bases")));
    }
}
