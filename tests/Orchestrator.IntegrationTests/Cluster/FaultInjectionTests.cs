using System.Diagnostics;
using Npgsql;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.TestKit;
using Orchestrator.Worker;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>
/// Faults injected into real processes (silos started from the Orchestrator.Silo build, signals sent by the OS, a real
/// PostgreSQL stopped and started) while real tiny cells train. Every scenario ends by reading the database: each cell's
/// status, its attempts against its limit, how many times it actually trained (the training-run log), and whether the
/// queue's view (<c>status</c>) and the aggregate (<c>results</c>) agree with it.
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class FaultInjectionTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-faults-");

    /// <summary>A sweep of <paramref name="seeds"/> cells (one size), each training <paramref name="steps"/> steps.</summary>
    private static SweepPlan Plan(string name, int seeds, int steps, int maxAttempts, int leaseSeconds = 5) =>
        SweepPlanner.PlanText($$"""
            name: {{name}}
            dataset:
              kind: synthetic-e2e
              options: {mrs: 40, seed: 5}
              eval_limit: 2
            model:
              preset: test
            methods: [finetune]
            grid:
              sizes: [10]
              subsamples: 1
              seeds: [{{string.Join(", ", Enumerable.Range(0, seeds))}}]
            training:
              learning_rate: 3.0e-3
              batch_size: 5
              max_steps: {{steps}}
              warmup_steps: 2
              eval_every: {{steps}}
            decoding:
              strategy: greedy
              max_new_tokens: 6
              min_new_tokens: 1
            execution:
              max_attempts: {{maxAttempts}}
              lease_seconds: {{leaseSeconds}}
            """, OrchestratorVocabulary.Default, Path.GetTempPath());

    public void Dispose() => _dir.Delete(recursive: true);

    private async Task<LocalCluster> StartAsync(string name, int workers, params string[] workerArgs)
    {
        var cluster = await LocalCluster.CreateAsync(postgres, name);
        await cluster.StartSiloAsync("coordinator", "coordinator");
        for (var i = 1; i <= workers; i++)
        {
            await StartWorkerAsync(cluster, $"worker-{i}", workerArgs);
        }

        await cluster.ConnectClientAsync();
        return cluster;
    }

    /// <summary>A worker with its own spool directory (kept across restarts of the same name).</summary>
    private Task<SiloProcess> StartWorkerAsync(LocalCluster cluster, string name, params string[] extra) =>
        cluster.StartSiloAsync(name, "worker", ["--threads", "1", "--spool", Path.Combine(_dir.FullName, cluster.ClusterId, name), .. extra]);

    private async Task<IReadOnlyList<CellTruth>> FinalTruthAsync(LocalCluster cluster, SweepPlan plan)
    {
        var final = await cluster.WaitForCompletionAsync(plan.SweepId, Patience);
        var cells = await SweepTruth.ReadAsync(cluster, plan.SweepId);

        foreach (var c in cells)
        {
            output.WriteLine($"{c.Label}: {c.Status ?? "-"} attempt {c.ResultAttempt}, attempts {c.Attempts}/{c.AttemptLimit}, " +
                             $"trained {c.Trainings} ({c.SucceededTrainings} to the end), queue {c.QueueState}");
        }

        Assert.Equal(plan.Cells.Count, cells.Count);
        SweepTruth.AssertConsistent(cells);
        Assert.Equal(cells.Count(c => c.Status == "succeeded"), final.Done);
        Assert.Equal(cells.Count(c => c.Status != "succeeded"), final.Failed + final.Blocked);

        // `results` reads the database's aggregate: its counts agree with the rows.
        var results = await cluster.CallAsync(g => g.GetGrain<IResultsGrain>(plan.SweepId).GetAsync());
        var metric = results.Points.Select(p => p.Metric).First();
        Assert.Equal(cells.Count(c => c.Status == "succeeded"), results.Points.Where(p => p.Metric == metric).Sum(p => p.N));
        return cells;
    }

    /// <summary>
    /// Only a coordinator's restart may rebuild the queue from the database; workers dying must not. A rebuild forgets every
    /// running lease (other workers' cells are stopped and trained again) and the expired attempts that mark a poison cell.
    /// The coordinator logs each activation of the queue; a rebuilt queue also no longer lists the cells it had finished.
    /// </summary>
    private static void AssertQueueNeverRebuilt(LocalCluster cluster, IReadOnlyList<CellTruth> cells)
    {
        var log = cluster.Silos.Single(s => s.Name == "coordinator").Log;
        var activations = log.Split('\n').Where(l => l.Contains("Queue default activated", StringComparison.Ordinal)).ToList();
        Assert.True(activations.Count == 1, $"the queue was activated {activations.Count} times while only workers died:\n{string.Join("\n", activations)}");
        Assert.All(cells, c => Assert.True(c.QueueState != "missing", $"the queue was rebuilt while only workers died: {c}"));
    }

    [Fact]
    public async Task A_worker_stopped_with_SIGTERM_mid_cell_releases_it_and_the_cell_succeeds_later_without_an_attempt_charged()
    {
        await using var cluster = await StartAsync("sigterm", workers: 1);
        var plan = Plan("sigterm", seeds: 1, steps: 400, maxAttempts: 1);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        var key = await SweepTruth.WaitForTrainingAsync(cluster, "worker-1", TimeSpan.FromSeconds(90));
        await Task.Delay(500);

        var worker = cluster.Silos.Single(s => s.Name == "worker-1");
        var clock = Stopwatch.StartNew();
        worker.Terminate();
        Assert.True(await worker.ExitedWithinAsync(TimeSpan.FromSeconds(30)), "the worker did not exit after SIGTERM:\n" + worker.Log);
        output.WriteLine($"worker-1 exited {clock.Elapsed.TotalSeconds:F1} s after SIGTERM");
        Assert.Contains("released (no attempt charged)", worker.Log);

        var cell = (await SweepTruth.ReadAsync(cluster, plan.SweepId)).Single();
        Assert.Equal("pending", cell.QueueState);   // back in the queue at once, not after its lease ran out
        Assert.Null(cell.Status);

        await StartWorkerAsync(cluster, "worker-2");
        cell = (await FinalTruthAsync(cluster, plan)).Single();
        Assert.Equal("succeeded", cell.Status);     // max_attempts 1, yet the stop did not use it up
        Assert.Equal((2, 1), (cell.Trainings, cell.SucceededTrainings));
        Assert.Equal(key, cell.CellKey);
    }

    [Fact]
    public async Task A_worker_stopped_with_SIGTERM_and_a_drain_finishes_its_running_cell_before_it_exits()
    {
        await using var cluster = await StartAsync("drain", workers: 1, "--drain-seconds", "120");
        var plan = Plan("drain", seeds: 1, steps: 60, maxAttempts: 1);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await SweepTruth.WaitForTrainingAsync(cluster, "worker-1", TimeSpan.FromSeconds(90));

        var worker = cluster.Silos.Single(s => s.Name == "worker-1");
        worker.Terminate();
        Assert.True(await worker.ExitedWithinAsync(TimeSpan.FromSeconds(150)), "the worker did not exit after its drain:\n" + worker.Log);

        // Finished by the stopping worker itself: no other worker was ever started.
        var cell = (await FinalTruthAsync(cluster, plan)).Single();
        Assert.Equal(("succeeded", 1, 1, 1), (cell.Status, cell.ResultAttempt, cell.Trainings, cell.SucceededTrainings));
    }

    [Fact]
    public async Task A_worker_paused_past_its_lease_and_resumed_does_not_override_the_cells_new_holder()
    {
        await using var cluster = await StartAsync("pause", workers: 1);
        // A 10 s lease: the new holder renews every 3.3 s, so a loaded machine's stalls of a few seconds do not expire its lease
        // too (a third training); the paused worker's lease still runs out, as the pause lasts until worker-2 trains the cell.
        var plan = Plan("pause", seeds: 1, steps: 120, maxAttempts: 3, leaseSeconds: 10);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        var key = await SweepTruth.WaitForTrainingAsync(cluster, "worker-1", TimeSpan.FromSeconds(90));

        var paused = cluster.Silos.Single(s => s.Name == "worker-1");
        paused.Pause();
        try
        {
            // The lease runs out while the worker is frozen; another worker takes the cell over.
            await StartWorkerAsync(cluster, "worker-2");
            // Started, or already done: the 120-step cell takes worker-2 about 1.5 s.
            await SweepTruth.WaitForTrainingAsync(cluster, "worker-2", TimeSpan.FromSeconds(60), orFinished: true);
        }
        finally
        {
            paused.Resume();
        }

        var cell = (await FinalTruthAsync(cluster, plan)).Single();
        Assert.Equal(key, cell.CellKey);
        Assert.Equal("succeeded", cell.Status);
        Assert.Equal(2, cell.Trainings);
        Assert.True(cell.Attempts is >= 2 and <= 3, cell.ToString());
    }

    [Fact]
    public async Task A_coordinator_killed_within_a_second_of_a_lease_never_reissues_an_attempt_number()
    {
        await using var cluster = await StartAsync("kill_after_lease", workers: 2);
        var plan = Plan("kill_after_lease", seeds: 3, steps: 20, maxAttempts: 2);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await SweepTruth.WaitForFirstLeaseAsync(cluster, plan.SweepId, TimeSpan.FromSeconds(90));
        cluster.Silos.Single(s => s.Name == "coordinator").Kill();
        await cluster.StartSiloAsync("coordinator-2", "coordinator");

        var cells = await FinalTruthAsync(cluster, plan);
        Assert.All(cells, c => Assert.Equal("succeeded", c.Status));
        Assert.All(cells, c => Assert.True(c.Attempts <= 2, c.ToString()));
    }

    [Fact]
    public async Task A_result_computed_while_PostgreSQL_is_down_for_60_s_is_kept_and_the_cell_trains_once()
    {
        await using var cluster = await StartAsync("pg_down", workers: 1);
        var plan = Plan("pg_down", seeds: 1, steps: 30, maxAttempts: 1);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await SweepTruth.WaitForTrainingAsync(cluster, "worker-1", TimeSpan.FromSeconds(90));

        var outage = Stopwatch.StartNew();
        await cluster.Postgres.RestartAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"PostgreSQL was down for {outage.Elapsed.TotalSeconds:F0} s");
        var worker = cluster.Silos.Single(s => s.Name == "worker-1");
        Assert.Contains("the database is unreachable", worker.Log);   // the result was computed during the outage

        var cell = (await FinalTruthAsync(cluster, plan)).Single();
        Assert.Equal(("succeeded", 1, 1), (cell.Status, cell.ResultAttempt, cell.Trainings));
        Assert.False(Directory.EnumerateFiles(Path.Combine(_dir.FullName, cluster.ClusterId, "worker-1")).Any(), "the spool was not emptied");
    }

    [Fact]
    public async Task A_slow_database_during_resume_does_not_expire_a_short_lease_that_keeps_renewing()
    {
        await using var cluster = await StartAsync("slow_resume", workers: 0);

        // Another sweep, cancelled before any worker exists, is resumed below while the database stalls.
        var resumed = Plan("slow_resume_other", seeds: 2, steps: 10, maxAttempts: 1);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, resumed));
        await cluster.CallAsync(async g => { await g.GetGrain<ISweepGrain>(resumed.SweepId).CancelAsync(); return 0; });

        // The cell that trains holds a 2 s lease (below the spec's 5 s minimum, so submitted to the grain directly), renewed every
        // ~0.7 s; its worker has one slot, so it leases nothing else meanwhile.
        var training = Plan("slow_resume", seeds: 1, steps: 300, maxAttempts: 1);
        var submission = SweepSubmitter.ToSubmission(training, training.SweepId);
        submission = submission with { LeaseSeconds = 2, Cells = [.. submission.Cells.Select(c => c with { LeaseSeconds = 2 })] };
        await cluster.CallAsync(g => g.GetGrain<ISweepGrain>(training.SweepId).SubmitAsync(submission));
        await StartWorkerAsync(cluster, "worker-1");
        var key = await SweepTruth.WaitForTrainingAsync(cluster, "worker-1", TimeSpan.FromSeconds(90));

        // The stall is real: another connection holds the tables the reload reads (and the worker's result write needs) for
        // three lease periods, shorter than the silos' 10 s call timeout so that the resume itself succeeds. Taken as soon as
        // the cell trains: however fast it trains, its result waits for the end of the stall, its lease held all along.
        var stall = TimeSpan.FromSeconds(6);
        await using var blocker = new NpgsqlConnection(cluster.ConnectionString);
        await blocker.OpenAsync();
        await using (var transaction = await blocker.BeginTransactionAsync())
        {
            await using (var command = new NpgsqlCommand("LOCK TABLE cell_attempts, cell_results IN ACCESS EXCLUSIVE MODE", blocker, transaction))
            {
                await command.ExecuteNonQueryAsync();
            }

            var clock = Stopwatch.StartNew();
            var resume = cluster.Grains.GetGrain<ISweepGrain>(resumed.SweepId).ResumeAsync();
            await Task.Delay(stall / 2);
            Assert.False(resume.IsCompleted, "resume did not wait for the locked tables: the test would prove nothing");

            // Half way and at the end of the stall the queue answers at once, and the short lease is still held: renewals went through.
            for (var probe = 0; probe < 2; probe++)
            {
                var asked = Stopwatch.StartNew();
                var answer = cluster.Grains.GetGrain<ISweepGrain>(training.SweepId).GetCellsAsync();
                Assert.True(await Task.WhenAny(answer, Task.Delay(stall / 3)) == answer,
                    $"the queue did not answer within {(stall / 3).TotalSeconds} s while the database stalled: renewals wait as long");
                output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s into the stall the queue answered in {asked.Elapsed.TotalMilliseconds:F0} ms");
                var cell = Assert.Single(await answer);
                Assert.Equal((key, "leased", "worker-1", 1), (cell.CellKey, cell.State, cell.WorkerId, cell.Attempts));
                if (clock.Elapsed < stall)
                {
                    await Task.Delay(stall - clock.Elapsed);
                }
            }

            Assert.False(resume.IsCompleted, "resume finished while its tables were locked");
            await transaction.RollbackAsync();
            Assert.Equal(2, await resume);
            output.WriteLine($"resume returned {clock.Elapsed.TotalSeconds:F1} s after the lock was taken");
        }

        var cellTruth = (await FinalTruthAsync(cluster, training)).Single();
        Assert.Equal(("succeeded", 1, 1, 1, 1), (cellTruth.Status, cellTruth.ResultAttempt, cellTruth.Attempts, cellTruth.Trainings, cellTruth.SucceededTrainings));
        Assert.All(await FinalTruthAsync(cluster, resumed), c => Assert.Equal(("succeeded", 1), (c.Status, c.Trainings)));
        Assert.DoesNotContain("is no longer current", cluster.Silos.Single(s => s.Name == "worker-1").Log);
    }

    [Fact]
    public async Task A_poison_cell_that_kills_its_worker_every_time_fails_with_that_reason_while_the_rest_of_the_sweep_finishes()
    {
        await using var cluster = await StartAsync("poison", workers: 1);
        // Long enough (seconds) that the kill below always lands while the poison cell trains.
        var plan = Plan("poison", seeds: 3, steps: 300, maxAttempts: 2);
        var poison = plan.Cells[1].Key;
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));

        // The poison: whichever worker takes the cell dies at once (SIGKILL, as an out-of-memory kill would), and is replaced.
        var replacements = 0;
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            var cells = await cluster.CallAsync(g => g.GetGrain<ISweepGrain>(plan.SweepId).GetCellsAsync());
            if (cells.All(c => c.State is "done" or "failed"))
            {
                break;
            }

            if (cells.SingleOrDefault(c => c.CellKey == poison && c.State == "leased") is { WorkerId: { } holder } &&
                cluster.Silos.Single(x => x.Name == holder) is { Process.HasExited: false } victim)
            {
                victim.Kill();
                await StartWorkerAsync(cluster, $"worker-r{++replacements}");
            }

            await Task.Delay(100);
        }

        var truth = await FinalTruthAsync(cluster, plan);
        AssertQueueNeverRebuilt(cluster, truth);
        var poisoned = truth.Single(c => c.CellKey == poison);
        Assert.Equal("failed", poisoned.QueueState);
        Assert.Equal(2, poisoned.Attempts);
        Assert.Contains("possibly a poison cell", poisoned.QueueError);
        Assert.All(truth.Where(c => c.CellKey != poison), c => Assert.Equal(("succeeded", 1), (c.Status, c.Trainings)));
    }

    [Fact]
    public async Task Workers_stopped_killed_paused_and_restarted_at_random_end_with_database_status_and_results_agreeing()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("ORCHESTRATOR_CHAOS_SEED"), out var s) ? s : 1515;
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("ORCHESTRATOR_CHAOS_ROUNDS"), out var r) ? r : 8;
        var random = new Random(seed);
        output.WriteLine($"chaos seed {seed}, {rounds} rounds");
        await using var cluster = await StartAsync("chaos", workers: 2);
        var plan = Plan("chaos", seeds: 6, steps: 24, maxAttempts: 20);
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        await SweepTruth.WaitForFirstLeaseAsync(cluster, plan.SweepId, TimeSpan.FromSeconds(90));

        var next = 3;
        for (var round = 0; round < rounds; round++)
        {
            var alive = cluster.Silos.Where(x => x.Name.StartsWith("worker", StringComparison.Ordinal) && !x.Process.HasExited).ToList();
            var action = alive.Count == 0 ? 3 : random.Next(4);
            var victim = alive.Count == 0 ? null : alive[random.Next(alive.Count)];
            switch (action)
            {
                case 0:
                    output.WriteLine($"round {round}: SIGTERM {victim!.Name}");
                    victim.Terminate();
                    await victim.ExitedWithinAsync(TimeSpan.FromSeconds(30));
                    break;
                case 1:
                    output.WriteLine($"round {round}: SIGKILL {victim!.Name}");
                    victim.Kill();
                    break;
                case 2:
                    var pause = TimeSpan.FromSeconds(1 + random.Next(8));
                    output.WriteLine($"round {round}: SIGSTOP {victim!.Name} for {pause.TotalSeconds} s");
                    victim.Pause();
                    await Task.Delay(pause);
                    victim.Resume();
                    break;
                default:
                    output.WriteLine($"round {round}: start worker-{next}");
                    await StartWorkerAsync(cluster, $"worker-{next++}");
                    break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500 + random.Next(2500)));
        }

        if (!cluster.Silos.Any(x => x.Name.StartsWith("worker", StringComparison.Ordinal) && !x.Process.HasExited))
        {
            await StartWorkerAsync(cluster, $"worker-{next}");
        }

        var cells = await FinalTruthAsync(cluster, plan);
        AssertQueueNeverRebuilt(cluster, cells);
        Assert.All(cells, c => Assert.Equal("succeeded", c.Status));
    }
}
