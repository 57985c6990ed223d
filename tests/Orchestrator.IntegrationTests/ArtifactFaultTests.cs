using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.TestKit;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// The artifact store under faults, on an embedded host that trains for real: garbage collection running throughout a staged
/// sweep removes nothing the sweep needs, and an artifact that was deleted after its sweep makes its source cell train again
/// when a later cell needs it, instead of failing that cell. How many times each cell trained is read from the training-run log.
/// </summary>
public sealed class ArtifactFaultTests : IDisposable
{
    private static string Spec(string name, string laterSeeds) => $$"""
        name: {{name}}
        stages:
          - name: src
            dataset: {kind: jsonl, path: source.jsonl, eval_limit: 2}
            methods: [lora]
            grid: {sizes: [10], subsamples: 1, seeds: [0]}
        dataset:
          kind: synthetic-e2e
          options: {mrs: 40, seed: 3}
          eval_limit: 2
        model:
          preset: test
        methods:
          - {name: lora, needs: [src]}
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [{{laterSeeds}}]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 6
          warmup_steps: 1
          eval_every: 6
        decoding:
          strategy: greedy
          max_new_tokens: 5
          min_new_tokens: 1
        execution:
          max_attempts: 1
          lease_seconds: 30
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-artifact-faults-");

    public ArtifactFaultTests()
    {
        TestData.WritePlaces(Path.Combine(_dir.FullName, "source.jsonl"), 30);
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private ArtifactStore Files => new(Path.Combine(_dir.FullName, "artifacts"));

    private IHost Host() => EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, WorkerSlots = 1, PackSize = 1 });

    private static async Task<Dictionary<string, int>> TrainingsAsync(IResultStore store, IEnumerable<string> keys, CancellationToken ct) =>
        (await store.GetTrainingRunsAsync(keys, ct)).GroupBy(r => r.CellKey).ToDictionary(g => g.Key, g => g.Count());

    [Fact]
    public async Task Garbage_collection_running_throughout_a_staged_sweep_removes_nothing_it_needs()
    {
        var plan = SweepPlanner.PlanText(Spec("gc", "0, 1"), OrchestratorVocabulary.Default, _dir.FullName);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using var host = Host();
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var store = host.Services.GetRequiredService<IResultStore>();
        await SweepSubmitter.SubmitAsync(grains, plan);

        // gc with no minimum age, as often as it can run, while cells train, store and index their artifacts.
        using var stopGc = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var collections = 0;
        var gc = Task.Run(async () =>
        {
            while (!stopGc.IsCancellationRequested)
            {
                await ArtifactRetention.CollectAsync(store, Files, TimeSpan.Zero, dryRun: false, DateTimeOffset.UtcNow, stopGc.Token);
                collections++;
                await Task.Delay(20, CancellationToken.None);
            }
        }, CancellationToken.None);
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        await stopGc.CancelAsync();
        await gc.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);

        Assert.True(collections > 5, $"gc ran only {collections} times");
        Assert.Equal((3, 0, 0), (final.Done, final.Failed, final.Blocked));
        var trainings = await TrainingsAsync(store, plan.Cells.Select(c => c.Key), cts.Token);
        Assert.All(plan.Cells, c => Assert.Equal(1, trainings.GetValueOrDefault(c.Key)));   // nothing had to be rebuilt
        var source = plan.Cells.Single(c => c.Stage == "src");
        Files.Open((await store.GetArtifactsAsync([source.Key], cts.Token))[source.Key]);   // still there, still hashing right
        await host.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_deleted_artifact_makes_its_source_cell_train_again_when_a_later_cell_needs_it()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using var host = Host();
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var store = host.Services.GetRequiredService<IResultStore>();
        var first = SweepPlanner.PlanText(Spec("first", "0"), OrchestratorVocabulary.Default, _dir.FullName);
        await SweepSubmitter.SubmitAsync(grains, first);
        Assert.Equal(2, (await SweepSubmitter.WaitAsync(grains, first.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token)).Done);

        var source = first.Cells.Single(c => c.Stage == "src");
        var artifact = (await store.GetArtifactsAsync([source.Key], cts.Token))[source.Key];
        Files.Delete(artifact.Sha256);   // say, removed by hand, or lost with a volume

        // A new sweep reuses the source cell (already succeeded) and adds a later cell that needs its trained method.
        var second = SweepPlanner.PlanText(Spec("second", "0, 1"), OrchestratorVocabulary.Default, _dir.FullName);
        var added = second.Cells.Single(c => c.Stage is null && !first.Cells.Any(f => f.Key == c.Key));
        Assert.Equal([source.Key], added.Dependencies);
        await SweepSubmitter.SubmitAsync(grains, second);
        var final = await SweepSubmitter.WaitAsync(grains, second.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        Assert.Equal((3, 0, 0), (final.Done, final.Failed, final.Blocked));

        var trainings = await TrainingsAsync(store, second.Cells.Select(c => c.Key), cts.Token);
        Assert.Equal(2, trainings[source.Key]);   // trained again to rebuild its artifact
        Assert.Equal(1, trainings[added.Key]);
        var cells = await store.GetSweepCellsAsync(second.SweepId, cts.Token);
        Assert.All(cells, c => Assert.Equal(CellStatus.Succeeded, c.Result?.Status));
        Files.Open((await store.GetArtifactsAsync([source.Key], cts.Token))[source.Key]);
        await host.StopAsync(CancellationToken.None);
    }
}
