using System.Text.Json;
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
/// Staged sweeps on an embedded host that trains for real: a later stage's cell runs only after the cells it needs, receives
/// their trained methods from the artifact store, and is blocked (then unblocked by rerun-failed) when one of them fails.
/// </summary>
public sealed class StagedSweepTests : IDisposable
{
    private const string Spec = """
        name: staged
        stages:
          - name: src
            dataset: {kind: jsonl, path: source.jsonl, eval_limit: 3}
            methods: [lora]
            grid: {sizes: [10], subsamples: 1, seeds: [0]}
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 3
        model:
          preset: test
        methods:
          - {name: lora, needs: [src]}
          - finetune
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

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-staged-");

    public StagedSweepTests()
    {
        TestData.WritePlaces(SourcePath, 40, i => i % 4 == 0 ? "bars" : "restaurants");
    }

    private string SourcePath => Path.Combine(_dir.FullName, "source.jsonl");

    public void Dispose() => _dir.Delete(recursive: true);

    private IHost Host() => EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, WorkerSlots = 1 });

    [Fact]
    public async Task A_later_stage_runs_after_its_dependency_with_the_dependencys_stored_trained_method()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        var source = plan.Cells.Single(c => c.Stage == "src");
        var dependant = plan.Cells.Single(c => c.Stage is null && c.Method == "lora");
        Assert.Equal([source.Key], dependant.Dependencies);

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using var host = Host();
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var store = host.Services.GetRequiredService<IResultStore>();
        await SweepSubmitter.SubmitAsync(grains, plan);
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        Assert.Equal((3, 0, 0), (final.Done, final.Failed, final.Blocked));

        // Only the needed cell kept its trained method; the folder is where the index says, and hashes to it.
        var artifacts = await store.ListArtifactsAsync(cts.Token);
        var artifact = Assert.Single(artifacts);
        Assert.Equal(source.Key, artifact.CellKey);
        var folder = new ArtifactStore(Path.Combine(_dir.FullName, "artifacts")).Open(artifact);
        Assert.True(File.Exists(Path.Combine(folder, "peft_method.safetensors")));
        Assert.Contains(source.Key, await store.GetNeededCellKeysAsync(cts.Token));

        var cells = await store.GetSweepCellsAsync(plan.SweepId, cts.Token);
        var sourceResult = cells.Single(c => c.Cell.CellKey == source.Key).Result!;
        var dependantResult = cells.Single(c => c.Cell.CellKey == dependant.Key).Result!;
        Assert.True(dependantResult.FinishedAt >= sourceResult.FinishedAt);
        using var provenance = JsonDocument.Parse(dependantResult.ProvenanceJson);
        Assert.Equal([source.Key], provenance.RootElement.GetProperty("dependencies").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("src/lora", cells.Single(c => c.Cell.CellKey == source.Key).Cell.Method);

        // gc keeps what a stored cell needs.
        var kept = await ArtifactRetention.CollectAsync(store, new ArtifactStore(Path.Combine(_dir.FullName, "artifacts")), TimeSpan.Zero,
            dryRun: false, DateTimeOffset.UtcNow, cts.Token);
        Assert.Equal((0, 1), (kept.Removed.Count, kept.KeptNeeded));
        await host.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_dependant_of_a_failed_cell_is_blocked_and_runs_after_rerun_failed_fixes_the_dependency()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        var saved = File.ReadAllBytes(SourcePath);
        File.Delete(SourcePath);   // the source stage's data is gone (say, an unmounted volume): its cell fails

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using var host = Host();
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var sweep = grains.GetGrain<ISweepGrain>(plan.SweepId);
        await SweepSubmitter.SubmitAsync(grains, plan);
        var first = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        Assert.Equal((1, 1, 1), (first.Done, first.Failed, first.Blocked));   // finetune done, src failed, lora blocked
        var blocked = (await sweep.GetCellsAsync()).Single(c => c.State == "blocked");
        Assert.StartsWith("lora n=10", blocked.Label, StringComparison.Ordinal);
        Assert.Contains("which failed", blocked.LastError, StringComparison.Ordinal);

        File.WriteAllBytes(SourcePath, saved);
        Assert.Equal(2, await sweep.RerunFailedAsync());
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        Assert.Equal((3, 0, 0), (final.Done, final.Failed, final.Blocked));
        await host.StopAsync(CancellationToken.None);
    }
    [Fact]
    public async Task Splits_sharing_training_decode_the_first_splits_model_and_score_exactly_as_if_each_had_trained_it()
    {
        var shared = """
            name: shared
            dataset:
              kind: jsonl
              path: source.jsonl
              splits: [seen, unseen]
              options: {holdout_topics: bars}
              eval_limit: 4
              share_training: true
            model: {preset: test}
            methods: [finetune, lora]
            grid: {sizes: [8], subsamples: 1, seeds: [0]}
            training: {learning_rate: 3.0e-3, batch_size: 4, max_steps: 6, warmup_steps: 1, eval_every: 3}
            decoding: {strategy: greedy, max_new_tokens: 6, min_new_tokens: 1}
            execution: {max_attempts: 1, lease_seconds: 30}
            """;
        var separate = shared.Replace("name: shared", "name: separate").Replace("  share_training: true\n", "");
        var sharedPlan = SweepPlanner.PlanText(shared, OrchestratorVocabulary.Default, _dir.FullName);
        var separatePlan = SweepPlanner.PlanText(separate, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.All(sharedPlan.Cells.Where(c => c.Split == "unseen"), c => Assert.True(c.ReusesTraining));
        Assert.All(separatePlan.Cells, c => Assert.False(c.ReusesTraining));

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using var host = Host();
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var store = host.Services.GetRequiredService<IResultStore>();
        foreach (var plan in new[] { sharedPlan, separatePlan })
        {
            await SweepSubmitter.SubmitAsync(grains, plan);
            var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal((4, 0), (final.Done, final.Failed));
        }

        var a = await store.GetSweepCellsAsync(sharedPlan.SweepId, cts.Token);
        var b = await store.GetSweepCellsAsync(separatePlan.SweepId, cts.Token);
        foreach (var method in new[] { "finetune", "lora" })
        {
            var reused = a.Single(c => c.Cell.Method == method && c.Cell.Split == "unseen").Result!;
            var trained = b.Single(c => c.Cell.Method == method && c.Cell.Split == "unseen").Result!;
            Assert.NotEmpty(reused.Outputs);
            Assert.Equal(trained.Outputs, reused.Outputs);
            Assert.Equal(trained.Metrics["bleu"], reused.Metrics["bleu"]);
            using var provenance = JsonDocument.Parse(reused.ProvenanceJson);
            Assert.True(provenance.RootElement.GetProperty("reused_training").GetBoolean());
            Assert.Equal(0, provenance.RootElement.GetProperty("steps").GetInt32());
        }

        await host.StopAsync(CancellationToken.None);
    }
}
