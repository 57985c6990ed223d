using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// The queue grain and the database agree on the paths where they used to part: a lease request repeated, a coordinator gone
/// right after a lease, a success arriving after its lease expired, a lease given back. On an embedded host (SQLite) with no
/// worker: the test plays the worker through the grain and the store, so every step is exact.
/// </summary>
public sealed class QueueTruthTests : IDisposable
{
    private const string Spec = """
        name: truth
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 3
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        training:
          max_steps: 2
        execution:
          max_attempts: 2
          lease_seconds: 30
        """;

    private static readonly WorkerCapabilities Worker = new("test-worker", "cpu", 0, 0, 1);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-truth-");

    public void Dispose() => _dir.Delete(recursive: true);

    private SweepPlan Plan() => SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);

    private async Task<IHost> StartAsync(CancellationToken ct)
    {
        var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, RunWorker = false });
        await host.StartAsync(ct);
        return host;
    }

    private static ITrialQueueGrain Queue(IHost host) =>
        host.Services.GetRequiredService<IGrainFactory>().GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);

    private static CellResultRecord Result(CellLease lease, string status) =>
        new(lease.Work.CellKey, lease.Attempt, status, status == CellStatus.Succeeded ? new Dictionary<string, double> { ["bleu"] = 42 } : [],
            status == CellStatus.Failed ? "boom" : null, "test-worker", "cpu", 1, 1, "{}", [], DateTimeOffset.UtcNow);

    private static async Task<(int Attempts, int Limit)> CounterAsync(string databasePath, string cellKey)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={databasePath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT attempts, attempt_limit FROM cell_attempts WHERE cell_key = $k";
        command.Parameters.AddWithValue("$k", cellKey);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"no attempt counter for {cellKey}");
        return (reader.GetInt32(0), reader.GetInt32(1));
    }

    private string DatabasePath => new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath;

    [Fact]
    public async Task A_repeated_lease_request_returns_the_same_lease_and_the_attempt_is_counted_once()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var plan = Plan();
        using var host = await StartAsync(cts.Token);
        await SweepSubmitter.SubmitAsync(host.Services.GetRequiredService<IGrainFactory>(), plan);
        var queue = Queue(host);

        var request = Worker with { RequestId = "request-1" };
        var first = await queue.LeaseAsync(request);
        var retry = await queue.LeaseAsync(request);    // the first reply was lost: the client retries with the same id
        Assert.NotNull(first);
        Assert.Equal(first, retry);
        Assert.Equal((1, 2), await CounterAsync(DatabasePath, first.Work.CellKey));
        Assert.Equal(1, (await queue.GetProgressAsync(plan.SweepId)).Leased);

        var other = await queue.LeaseAsync(Worker with { RequestId = "request-2" });
        Assert.NotNull(other);
        Assert.NotEqual(first.Work.CellKey, other.Work.CellKey);
        await host.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_coordinator_gone_right_after_a_lease_never_reissues_its_attempt_nor_queues_a_cell_that_succeeded()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var plan = Plan();
        CellLease trained, lost;
        using (var host = await StartAsync(cts.Token))
        {
            await SweepSubmitter.SubmitAsync(host.Services.GetRequiredService<IGrainFactory>(), plan);
            trained = (await Queue(host).LeaseAsync(Worker))!;
            lost = (await Queue(host).LeaseAsync(Worker))!;

            // Counted in the database before the leases were handed out: a kill at this instant loses nothing.
            Assert.Equal((1, 2), await CounterAsync(DatabasePath, trained.Work.CellKey));
            Assert.Equal((1, 2), await CounterAsync(DatabasePath, lost.Work.CellKey));

            // One worker stored its success; the coordinator goes before either lease is completed.
            await host.Services.GetRequiredService<IResultStore>().WriteResultAsync(Result(trained, CellStatus.Succeeded), cts.Token);
            await host.StopAsync(CancellationToken.None);
        }

        using (var host = await StartAsync(cts.Token))
        {
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            Assert.Equal(1, await grains.GetGrain<ISweepGrain>(plan.SweepId).ResumeAsync()); // the succeeded cell is not queued again
            var again = (await Queue(host).LeaseAsync(Worker))!;
            Assert.Equal((lost.Work.CellKey, 2), (again.Work.CellKey, again.Attempt));   // attempt 1 was spent: never issued twice
            Assert.Null(await Queue(host).LeaseAsync(Worker));
            var progress = await grains.GetGrain<ISweepGrain>(plan.SweepId).GetProgressAsync();
            Assert.Equal((1, 1, 0), (progress.Done, progress.Leased, progress.Pending));
            await host.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_late_success_is_accepted_and_the_newer_holder_stops_and_a_late_failure_never_replaces_it()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var plan = Plan();
        var cell = plan.Cells[0];
        var work = new CellWork("late", cell.Key, cell.ToCanonicalJson(), cell.Label, 3, 1, ["bleu"]);
        using var host = await StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var store = host.Services.GetRequiredService<IResultStore>();
        await grains.GetGrain<ISweepGrain>("late").SubmitAsync(new SweepSubmission("late", "late", Spec, "h", [work], 3, 1, ["bleu"], null));
        var queue = Queue(host);

        var old = (await queue.LeaseAsync(Worker))!;
        await Task.Delay(TimeSpan.FromSeconds(1.5), cts.Token);  // its holder paused past the lease
        var newer = (await queue.LeaseAsync(Worker))!;
        Assert.Equal((cell.Key, 2), (newer.Work.CellKey, newer.Attempt));

        // The paused holder resumes and stores its success: the queue takes it, the newer holder is told to stop.
        var stored = await store.WriteResultAsync(Result(old, CellStatus.Succeeded), cts.Token);
        Assert.Equal(new StoredResult(true, CellStatus.Succeeded, 1, null), stored);
        Assert.True(await queue.CompleteAsync(new CellCompletion(old.LeaseId, stored.Succeeded, null, cell.Key, stored.Attempt)));
        Assert.False(await queue.RenewAsync(newer.LeaseId));

        // The newer holder's failure is not written and, reported as what the database holds, changes nothing.
        var after = await store.WriteResultAsync(Result(newer, CellStatus.Failed), cts.Token);
        Assert.Equal(new StoredResult(false, CellStatus.Succeeded, 1, null), after);
        Assert.False(await queue.CompleteAsync(new CellCompletion(newer.LeaseId, after.Succeeded, after.Error, cell.Key, after.Attempt)));

        var progress = await queue.GetProgressAsync("late");
        Assert.Equal((1, 0, 0), (progress.Done, progress.Failed, progress.Leased));
        var (_, row) = Assert.Single(await store.GetSweepCellsAsync("late", cts.Token));
        Assert.Equal((CellStatus.Succeeded, 1), (row!.Status, row.Attempt));
        await host.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_released_lease_costs_no_attempt_even_with_a_budget_of_one_and_the_database_keeps_the_raised_limit()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var plan = Plan();
        var cell = plan.Cells[0];
        var work = new CellWork("release", cell.Key, cell.ToCanonicalJson(), cell.Label, 1, 30, ["bleu"]);
        using var host = await StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await grains.GetGrain<ISweepGrain>("release").SubmitAsync(new SweepSubmission("release", "release", Spec, "h", [work], 1, 30, ["bleu"], null));
        var queue = Queue(host);

        for (var stop = 1; stop <= 3; stop++)
        {
            // Three rolling updates: each worker stops gracefully and gives its lease back.
            var lease = (await queue.LeaseAsync(Worker))!;
            Assert.Equal(stop, lease.Attempt);
            Assert.True(await queue.ReleaseAsync(lease.LeaseId));
            Assert.False(await queue.ReleaseAsync(lease.LeaseId));
            Assert.Equal((stop, stop + 1), await CounterAsync(DatabasePath, cell.Key));
        }

        var last = (await queue.LeaseAsync(Worker))!;
        Assert.Equal(4, last.Attempt);
        Assert.True(await queue.CompleteAsync(new CellCompletion(last.LeaseId, true, null, cell.Key, 4)));
        Assert.Equal((1, 0), ((await queue.GetProgressAsync("release")).Done, (await queue.GetProgressAsync("release")).Failed));
        await host.StopAsync(CancellationToken.None);
    }
}
