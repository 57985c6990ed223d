using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.TestKit;
using Orchestrator.Worker;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// The failure model of ARCHITECTURE.md, proven with real processes on loopback: a throwaway PostgreSQL (membership
/// and results), the migration, a coordinator silo and worker silos started from the Orchestrator.Silo build, real
/// (tiny) training cells, and an Orleans client that submits and watches.
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class ClusterFailureTests(PostgresServer postgres, ITestOutputHelper output)
{
    private const string Spec = """
        name: chaos
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 5}
          eval_limit: 3
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10, 12]
          subsamples: 2
          seeds: [0, 1]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 16
          warmup_steps: 2
          eval_every: 8
        decoding:
          strategy: greedy
          max_new_tokens: 8
          min_new_tokens: 1
        execution:
          max_attempts: 6
          lease_seconds: 6
        """;

    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);

    private static SweepPlan Plan(string yaml = Spec) =>
        SweepPlanner.PlanText(yaml, OrchestratorVocabulary.Default, Path.GetTempPath());

    private async Task<LocalCluster> StartAsync(string name, int workers)
    {
        var cluster = await LocalCluster.CreateAsync(postgres, name);
        await cluster.StartSiloAsync("coordinator", "coordinator");
        for (var i = 1; i <= workers; i++)
        {
            await cluster.StartSiloAsync($"worker-{i}", "worker");
        }

        await cluster.ConnectClientAsync();
        return cluster;
    }

    private async Task AssertExactlyOnceAsync(LocalCluster cluster, SweepPlan plan, SweepProgress final)
    {
        Assert.Equal(plan.Cells.Count, final.Total);
        Assert.Equal(plan.Cells.Count, final.Done);
        Assert.Equal(0, final.Failed);
        var rows = await cluster.ResultRowsAsync(plan.SweepId);
        Assert.Equal(plan.Cells.Count, rows.Rows);       // exactly one row per cell: nothing lost, nothing duplicated
        Assert.Equal(plan.Cells.Count, rows.Succeeded);
        output.WriteLine($"{plan.Cells.Count} cells, max attempt {rows.MaxAttempt}, workers: {string.Join(", ", rows.Workers)}");
    }

    [Fact]
    public async Task A_worker_killed_while_its_cells_are_leased_loses_nothing()
    {
        await using var cluster = await StartAsync("kill_worker", workers: 2);
        var plan = Plan();
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await cluster.WaitForLeaseAsync(plan.SweepId, "worker-1", TimeSpan.FromSeconds(60));

        var killedAt = DateTime.UtcNow;
        cluster.Silos.Single(s => s.Name == "worker-1").Kill();
        var final = await cluster.WaitForCompletionAsync(plan.SweepId, Patience);
        output.WriteLine($"sweep completed {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");

        await AssertExactlyOnceAsync(cluster, plan, final);
        var rows = await cluster.ResultRowsAsync(plan.SweepId);
        Assert.True(rows.MaxAttempt >= 2, "the killed worker's cell must have been retried on another worker");
        Assert.Contains("worker-2", rows.Workers);
    }

    [Fact]
    public async Task A_coordinator_killed_mid_sweep_and_restarted_lets_the_sweep_complete()
    {
        await using var cluster = await StartAsync("kill_coordinator", workers: 2);
        var plan = Plan();
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await cluster.WaitForLeaseAsync(plan.SweepId, "worker-1", TimeSpan.FromSeconds(60));

        cluster.Silos.Single(s => s.Name == "coordinator").Kill();
        var killedAt = DateTime.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(2));
        await cluster.StartSiloAsync("coordinator-2", "coordinator");
        output.WriteLine($"new coordinator ready {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");

        var final = await cluster.WaitForCompletionAsync(plan.SweepId, Patience);
        output.WriteLine($"sweep completed {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");
        await AssertExactlyOnceAsync(cluster, plan, final);
    }

    [Fact]
    public async Task Postgres_restarted_mid_sweep_loses_nothing()
    {
        await using var cluster = await StartAsync("restart_postgres", workers: 2);
        var plan = Plan();
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await cluster.WaitForLeaseAsync(plan.SweepId, "worker-1", TimeSpan.FromSeconds(60));

        var restartedAt = DateTime.UtcNow;
        await cluster.Postgres.RestartAsync(TimeSpan.FromSeconds(3));
        var final = await cluster.WaitForCompletionAsync(plan.SweepId, Patience);
        output.WriteLine($"sweep completed {(DateTime.UtcNow - restartedAt).TotalSeconds:F1} s after the restart began");
        await AssertExactlyOnceAsync(cluster, plan, final);
    }

    [Fact]
    public async Task A_worker_started_mid_sweep_receives_work()
    {
        await using var cluster = await StartAsync("add_worker", workers: 1);
        // Cells long enough (~2 s each on one thread) that worker-1 cannot finish the sweep while the late worker starts,
        // even when the machine is loaded and a silo takes 10–20 s to join.
        var plan = Plan(Spec.Replace("seeds: [0, 1]", "seeds: [0, 1, 2]").Replace("max_steps: 16", "max_steps: 200").Replace("eval_every: 8", "eval_every: 100"));
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await cluster.WaitForLeaseAsync(plan.SweepId, "worker-1", TimeSpan.FromSeconds(60));

        var joining = DateTime.UtcNow;
        await cluster.StartSiloAsync("worker-late", "worker");
        output.WriteLine($"worker-late joined {(DateTime.UtcNow - joining).TotalSeconds:F1} s after worker-1's first lease");
        var final = await cluster.WaitForCompletionAsync(plan.SweepId, Patience);
        await AssertExactlyOnceAsync(cluster, plan, final);
        Assert.Contains("worker-late", (await cluster.ResultRowsAsync(plan.SweepId)).Workers);
    }

    [Fact]
    public async Task Submitting_the_same_spec_twice_does_no_duplicate_work()
    {
        await using var cluster = await StartAsync("submit_twice", workers: 2);
        var plan = Plan();
        var first = await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        var second = await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        Assert.Equal(plan.Cells.Count, first.Queued);
        Assert.Equal(0, second.Queued);

        var final = await cluster.WaitForCompletionAsync(plan.SweepId, Patience);
        await AssertExactlyOnceAsync(cluster, plan, final);
        Assert.Equal(1, (await cluster.ResultRowsAsync(plan.SweepId)).MaxAttempt);  // no cell was trained twice

        var third = await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        Assert.Equal((0, plan.Cells.Count), (third.Queued, third.AlreadyDone));
    }
}
