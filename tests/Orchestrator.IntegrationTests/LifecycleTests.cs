using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>Cancel, resume, rerun-failed and extend through the grains, on an embedded host (SQLite) that trains for real.</summary>
public sealed class LifecycleTests : IDisposable
{
    private const string Spec = """
        name: life
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
          seeds: [0]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 6
          warmup_steps: 1
          eval_every: 3
        decoding:
          strategy: greedy
          max_new_tokens: 6
          min_new_tokens: 1
        execution:
          max_attempts: 2
          lease_seconds: 30
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-life-");

    public void Dispose() => _dir.Delete(recursive: true);

    private SweepPlan Plan(string yaml) => SweepPlanner.PlanText(yaml, OrchestratorVocabulary.Default, _dir.FullName);

    private IHost Host(bool train) =>
        EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, RunWorker = train });

    [Fact]
    public async Task Cancel_stops_queueing_and_resume_finishes_the_sweep_from_the_database()
    {
        var plan = Plan(Spec.Replace("seeds: [0]", "seeds: [0, 1, 2]"));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        using (var host = Host(train: false))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            await SweepSubmitter.SubmitAsync(grains, plan);
            await grains.GetGrain<ISweepGrain>(plan.SweepId).CancelAsync();
            var store = host.Services.GetRequiredService<IResultStore>();
            Assert.Equal(SweepStatus.Cancelled, (await store.FindSweepAsync(plan.SweepId, cts.Token))!.Status);
            Assert.Equal(0, (await grains.GetGrain<ISweepGrain>(plan.SweepId).GetProgressAsync()).Pending);
            await host.StopAsync(CancellationToken.None);
        }

        // A new process (with a worker): a cancelled sweep is not picked up by itself…
        using (var host = Host(train: true))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var sweep = grains.GetGrain<ISweepGrain>(plan.SweepId);
            await Task.Delay(1500, cts.Token);
            Assert.Equal(0, (await sweep.GetProgressAsync()).Done);

            // …until it is resumed: every cell without a result is queued again and trained.
            Assert.Equal(3, await sweep.ResumeAsync());
            var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal((3, 0), (final.Done, final.Failed));
            await host.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_rebuilt_queue_keeps_the_sweeps_artifact_retention()
    {
        // Two sweeps without stages, one keeping every trained method; both are left unfinished by a process that does not train.
        var all = Plan(Spec.Replace("name: life", "name: keep-all").Replace("lease_seconds: 30", "lease_seconds: 30\n  artifacts: all"));
        var needed = Plan(Spec.Replace("name: life", "name: keep-needed").Replace("seed: 3}", "seed: 5}"));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using (var host = Host(train: false))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            await SweepSubmitter.SubmitAsync(grains, all);
            await SweepSubmitter.SubmitAsync(grains, needed);
            var store = host.Services.GetRequiredService<IResultStore>();
            Assert.Equal("all", (await store.FindSweepAsync(all.SweepId, cts.Token))!.ArtifactRetention);
            Assert.Equal("needed", (await store.FindSweepAsync(needed.SweepId, cts.Token))!.ArtifactRetention);
            await host.StopAsync(CancellationToken.None);
        }

        // A new coordinator rebuilds the queue from the database: the leased cell of the `all` sweep still keeps its method.
        using (var host = Host(train: false))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            Assert.Equal(1, await grains.GetGrain<ISweepGrain>(all.SweepId).ResumeAsync());
            Assert.Equal(1, await grains.GetGrain<ISweepGrain>(needed.SweepId).ResumeAsync());
            var queue = grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
            var worker = new WorkerCapabilities("w", "cpu", 1, 1L << 30, 2);
            var leases = new[] { await queue.LeaseAsync(worker), await queue.LeaseAsync(worker) }.Select(l => l!.Work).ToDictionary(w => w.SweepId);
            Assert.True(leases[all.SweepId].KeepArtifact);
            Assert.False(leases[needed.SweepId].KeepArtifact);
            await host.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task In_embedded_mode_running_one_sweep_does_not_train_an_interrupted_other_until_it_is_run_again()
    {
        var interrupted = Plan(Spec.Replace("name: life", "name: left-over"));
        var wanted = Plan(Spec.Replace("name: life", "name: wanted").Replace("seed: 3}", "seed: 4}"));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        using (var host = Host(train: false))
        {
            await host.StartAsync(cts.Token);
            await SweepSubmitter.SubmitAsync(host.Services.GetRequiredService<IGrainFactory>(), interrupted);
            await host.StopAsync(CancellationToken.None);
        }

        using (var host = Host(train: true))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var store = host.Services.GetRequiredService<IResultStore>();
            await SweepSubmitter.SubmitAsync(grains, wanted);
            var final = await SweepSubmitter.WaitAsync(grains, wanted.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal(1, final.Done);
            Assert.Null(Assert.Single(await store.GetSweepCellsAsync(interrupted.SweepId, cts.Token)).Result);

            // Running it again (or `resume`) carries the interrupted sweep on.
            var again = await SweepSubmitter.SubmitAsync(grains, interrupted);
            Assert.Equal(1, again.Queued);
            var done = await SweepSubmitter.WaitAsync(grains, interrupted.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal((1, 0), (done.Done, done.Failed));
            await host.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Extend_adds_only_new_cells_and_refuses_a_change_to_existing_ones()
    {
        var plan = Plan(Spec);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        using var host = Host(train: true);
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await SweepSubmitter.SubmitAsync(grains, plan);
        await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        var store = host.Services.GetRequiredService<IResultStore>();
        var before = (await store.GetSweepCellsAsync(plan.SweepId, cts.Token)).Single();

        var wider = Plan(Spec.Replace("seeds: [0]", "seeds: [0, 1]").Replace("sizes: [10]", "sizes: [10, 12]"));
        var extended = await SweepSubmitter.ExtendAsync(grains, wider, plan.SweepId);
        Assert.Equal((4, 1, 3), (extended.Total, extended.AlreadyDone, extended.Queued));
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        Assert.Equal((4, 4, 0), (final.Total, final.Done, final.Failed));
        var after = await store.GetSweepCellsAsync(plan.SweepId, cts.Token);
        Assert.Equal(4, after.Count);
        var kept = after.Single(c => c.Cell.CellKey == before.Cell.CellKey);
        Assert.Equal(before.Result!.FinishedAt, kept.Result!.FinishedAt);   // not recomputed

        var changed = Plan(Spec.Replace("learning_rate: 3.0e-3", "learning_rate: 1.0e-3"));
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => SweepSubmitter.ExtendAsync(grains, changed, plan.SweepId));
        Assert.Contains("would be dropped or changed", ex.Message);
        await host.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Rerun_failed_gives_failed_cells_new_attempts()
    {
        var plan = Plan(Spec);
        var bad = plan.Cells[0] with { Dataset = plan.Cells[0].Dataset with { ContentHash = new string('0', 64) } };
        var sweepId = "life-failing";
        var work = new CellWork(sweepId, bad.Key, bad.ToCanonicalJson(), bad.Label, 2, 30, ["bleu"]);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        using var host = Host(train: true);
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var sweep = grains.GetGrain<ISweepGrain>(sweepId);
        await sweep.SubmitAsync(new SweepSubmission(sweepId, "life-failing", Spec, "h", [work], 2, 30, ["bleu"], null));
        var first = await SweepSubmitter.WaitAsync(grains, sweepId, null, TimeSpan.FromMilliseconds(100), cts.Token);
        Assert.Equal(1, first.Failed);
        Assert.Equal(2, (await sweep.GetCellsAsync()).Single().Attempts);

        Assert.Equal(1, await sweep.RerunFailedAsync());
        var second = await SweepSubmitter.WaitAsync(grains, sweepId, null, TimeSpan.FromMilliseconds(100), cts.Token);
        Assert.Equal(1, second.Failed);
        var cell = (await sweep.GetCellsAsync()).Single();
        Assert.Equal(4, cell.Attempts);   // two fresh attempts on top of the first two, both failed again (the data still does not match)
        Assert.Contains("changed since the sweep was submitted", cell.LastError);
        var (_, row) = Assert.Single(await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(sweepId, cts.Token));
        Assert.Equal((CellStatus.Failed, 4), (row!.Status, row.Attempt));
        await host.StopAsync(CancellationToken.None);
    }
}
