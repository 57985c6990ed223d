using Orchestrator.Results;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// A command run against a cluster whose coordinator has not joined yet (a cluster still starting, or one whose coordinator is
/// being replaced): the CLI connects through a worker's gateway, waits for the coordinator and then works, or after its patience
/// says that no coordinator has joined, instead of failing with Orleans' "Could not find an implementation for interface".
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class CoordinatorJoinTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private const string Spec = """
        name: it-late-coordinator
        dataset:
          kind: synthetic-e2e
          options: {mrs: 40, seed: 3}
          eval_limit: 2
        model:
          preset: test
        methods: [finetune]
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

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("late-coordinator-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Submit_waits_for_a_coordinator_that_joins_after_the_command_connected()
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, "late-coordinator");
        await cluster.StartSiloAsync("worker-1", "worker");
        var spec = Path.Combine(_dir.FullName, "late.yaml");
        await File.WriteAllTextAsync(spec, Spec);

        var submit = CliCapture.RunAsync(["submit", spec, "--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId]);
        await Task.Delay(TimeSpan.FromSeconds(2)); // the command is connected (to the worker's gateway) and waiting
        if (submit.IsCompleted)
        {
            var early = await submit;
            Assert.Fail($"submit returned before any coordinator existed: exit {early.Exit}\n{early.Err}{early.Out}");
        }

        await cluster.StartSiloAsync("coordinator", "coordinator");

        var (exit, stdout, stderr) = await submit.WaitAsync(TimeSpan.FromMinutes(2));
        output.WriteLine(stdout + stderr);
        Assert.True(exit == 0, stderr + stdout);
        var sweep = await cluster.Store.FindSweepAsync("it-late-coordinator");
        Assert.NotNull(sweep);
        Assert.Equal(sweep.SweepId, stdout.Trim());

        var rows = await cluster.WaitForStoredResultsAsync(sweep.SweepId, TimeSpan.FromMinutes(2));

        Assert.Equal(CellStatus.Succeeded, Assert.Single(rows).Result!.Status);
    }

    [Fact]
    public async Task Without_a_coordinator_a_command_says_so_after_its_patience()
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, "no-coordinator");
        await cluster.StartSiloAsync("worker-1", "worker");
        var spec = Path.Combine(_dir.FullName, "none.yaml");
        await File.WriteAllTextAsync(spec, Spec.Replace("it-late-coordinator", "it-no-coordinator", StringComparison.Ordinal));

        var before = Environment.GetEnvironmentVariable("ORCHESTRATOR_COORDINATOR_WAIT_SECONDS");
        Environment.SetEnvironmentVariable("ORCHESTRATOR_COORDINATOR_WAIT_SECONDS", "2");
        try
        {
            var (exit, stdout, stderr) = await CliCapture.RunAsync(["submit", spec, "--cluster", cluster.ConnectionString, "--cluster-id", cluster.ClusterId]);
            output.WriteLine(stdout + stderr);
            Assert.NotEqual(0, exit);
            Assert.Contains("no coordinator silo has joined the cluster (waited 2 s", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Could not find an implementation", stderr, StringComparison.Ordinal);
            Assert.Null(await cluster.Store.FindSweepAsync("it-no-coordinator"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("ORCHESTRATOR_COORDINATOR_WAIT_SECONDS", before);
        }
    }
}
