using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>The slice end to end: an in-process silo, the queue, the worker training for real, and the SQLite store.</summary>
public sealed class EmbeddedSweepTests : IDisposable
{
    private const string Spec = """
        name: it-slice
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 5
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 12
          warmup_steps: 2
          eval_every: 6
        decoding:
          strategy: greedy
          max_new_tokens: 12
          min_new_tokens: 1
        execution:
          max_attempts: 2
          lease_seconds: 30
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-it-");

    public void Dispose() => _dir.Delete(recursive: true);

    private IHost NewHost() => EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, WorkerSlots = 1 });

    /// <summary>Runs <paramref name="plan"/> in a fresh embedded host to the end (every cell done, none failed) and returns its stored cells.</summary>
    private static async Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> RunToTheEndAsync(SweepPlan plan, EmbeddedOptions options,
        CancellationToken ct)
    {
        using var host = EmbeddedHost.Build(options);
        await host.StartAsync(ct);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await SweepSubmitter.SubmitAsync(grains, plan);
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), ct);
        Assert.Equal((plan.Cells.Count, 0), (final.Done, final.Failed));
        var rows = await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(plan.SweepId, ct);
        await host.StopAsync(CancellationToken.None);
        return rows;
    }

    [Fact]
    public async Task A_two_cell_sweep_runs_to_completion_and_resubmitting_does_no_new_work()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(2, plan.Cells.Count);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));

        IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> first;
        using (var host = NewHost())
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var submitted = await SweepSubmitter.SubmitAsync(grains, plan);
            Assert.Equal((2, 2, 0), (submitted.Total, submitted.Queued, submitted.AlreadyDone));
            var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal((2, 0), (final.Done, final.Failed));

            first = await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(plan.SweepId, cts.Token);
            await host.StopAsync(CancellationToken.None);
        }

        Assert.Equal(2, first.Count);
        Assert.Equal(plan.Cells.Select(c => c.Key).Order(), first.Select(c => c.Cell.CellKey).Order());
        foreach (var (cell, result) in first)
        {
            Assert.NotNull(result);
            Assert.Equal("succeeded", result.Status);
            Assert.Equal(1, result.Attempt);
            Assert.InRange(result.Metrics["bleu"], 0.0, 100.0);
            Assert.Equal(5, result.Outputs.Count);
            using var provenance = JsonDocument.Parse(result.ProvenanceJson);
            Assert.Equal(plan.Dataset.ContentHash, provenance.RootElement.GetProperty("dataset_hash").GetString());
            Assert.Matches("^[0-9a-f]{64}$", provenance.RootElement.GetProperty("manifest_hash").GetString());
            Assert.Equal(10, provenance.RootElement.GetProperty("train_examples").GetInt32());
            Assert.Equal(3, provenance.RootElement.GetProperty("dev_examples").GetInt32());
            Assert.Equal("finetune", cell.Method);
        }

        // The two seeds trained different models over the same subsample.
        var provenances = first.Select(c => JsonDocument.Parse(c.Result!.ProvenanceJson).RootElement).ToList();
        Assert.Equal(provenances[0].GetProperty("manifest_hash").GetString(), provenances[1].GetProperty("manifest_hash").GetString());

        // A new process on the same results file: the same spec is recognised as done and nothing is retrained.
        using (var host = NewHost())
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var again = await SweepSubmitter.SubmitAsync(grains, plan);
            Assert.Equal((2, 0, 2), (again.Total, again.Queued, again.AlreadyDone));
            var progress = await grains.GetGrain<ISweepGrain>(plan.SweepId).GetProgressAsync();
            Assert.True(progress.IsComplete);
            Assert.Equal(2, progress.Reused);

            var second = await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(plan.SweepId, cts.Token);
            Assert.Equal(
                first.Select(c => (c.Cell.CellKey, c.Result!.FinishedAt, c.Result.Metrics["bleu"])).OrderBy(x => x.CellKey),
                second.Select(c => (c.Cell.CellKey, c.Result!.FinishedAt, c.Result.Metrics["bleu"])).OrderBy(x => x.CellKey));
            await host.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Packed_cells_record_their_partners_and_give_the_same_numbers_as_alone_bit_for_bit()
    {
        var spec = Spec.Replace("name: it-slice", "name: it-packed")
            .Replace("methods: [finetune]", "methods: [finetune, {name: lora, training: {learning_rate: 1.0e-2}}, {name: prefix, options: {length: 2, hidden: 16}}]")
            .Replace("subsamples: 1", "subsamples: 2");
        var plan = SweepPlanner.PlanText(spec, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(12, plan.Cells.Count);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));

        Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> RunAsync(string dir, int pack) =>
            RunToTheEndAsync(plan, new EmbeddedOptions { DataDirectory = dir, WorkerSlots = 1, PackSize = pack }, cts.Token);

        var packed = await RunAsync(Path.Combine(_dir.FullName, "packed"), pack: 4);
        var alone = await RunAsync(Path.Combine(_dir.FullName, "alone"), pack: 1);
        // Packs of 3: other partners, another order of joining and leaving.
        var repacked = await RunAsync(Path.Combine(_dir.FullName, "repacked"), pack: 3);

        static JsonElement Provenance(CellResultRecord r) => JsonDocument.Parse(r.ProvenanceJson).RootElement;
        static void SameNumbers(string what, CellDescriptor cell, CellResultRecord expected, CellResultRecord actual)
        {
            Assert.Equal(expected.Metrics, actual.Metrics);
            Assert.Equal(expected.Outputs, actual.Outputs);
            foreach (var field in new[] { "final_train_loss", "best_dev_loss", "best_step" })
            {
                Assert.True(Provenance(expected).GetProperty(field).GetRawText() == Provenance(actual).GetProperty(field).GetRawText(),
                    $"{cell.Method} {cell.CellKey[..12]} {what}: {field} {Provenance(expected).GetProperty(field)} vs {Provenance(actual).GetProperty(field)}");
            }
        }

        foreach (var (cell, result) in packed)
        {
            var packing = Provenance(result!).GetProperty("packing");
            var partners = packing.TryGetProperty("packed_with", out var p) ? p.EnumerateArray().Select(e => e.GetString()!).ToList() : [];
            var single = alone.Single(c => c.Cell.CellKey == cell.CellKey).Result!;
            var again = repacked.Single(c => c.Cell.CellKey == cell.CellKey).Result!;
            if (cell.Method == "finetune")
            {
                Assert.False(packing.GetProperty("packed").GetBoolean());
                SameNumbers("second run", cell, result!, single);
                continue;
            }

            // A pack of 4: the other three cells of the same method (same pack group), never another method's.
            Assert.True(packing.GetProperty("packed").GetBoolean());
            Assert.Equal(3, partners.Count);
            Assert.All(partners, k => Assert.Equal(cell.Method, packed.Single(c => c.Cell.CellKey == k).Cell.Method));
            Assert.True(Provenance(again).GetProperty("packing").GetProperty("packed").GetBoolean());
            Assert.False(Provenance(single).GetProperty("packing").GetProperty("packed").GetBoolean());

            // The same cell gives the same bits alone, in a pack of 4 and in packs of 3.
            SameNumbers("alone vs pack of 4", cell, single, result!);
            SameNumbers("pack of 3 vs pack of 4", cell, again, result!);
        }
    }

    [Fact]
    public async Task Cells_give_the_same_numbers_in_one_slot_and_in_two_slots_training_at_once()
    {
        // Fine-tuning with base dropout draws masks while the other slot trains; prefix-tuning's reparametrisation was the
        // computation whose bits followed the process's thread count.
        var spec = Spec.Replace("name: it-slice", "name: it-slots")
            .Replace("methods: [finetune]", "methods: [{name: finetune, training: {base_dropout: 0.1}}, {name: prefix, options: {length: 2, hidden: 16}}]")
            .Replace("subsamples: 1", "subsamples: 2");
        var plan = SweepPlanner.PlanText(spec, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(8, plan.Cells.Count);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));

        Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> RunAsync(string dir, int slots) =>
            RunToTheEndAsync(plan, new EmbeddedOptions { DataDirectory = dir, WorkerSlots = slots, PackSize = 1 }, cts.Token);

        var one = await RunAsync(Path.Combine(_dir.FullName, "one"), slots: 1);
        // Whatever the process's own thread count, each cell trains on its worker's threads per cell (1).
        int processThreads = Orchestrator.Training.TorchRuntime.Threads;
        Orchestrator.Training.TorchRuntime.EnsureAvailable(2);
        IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> two;
        try
        {
            two = await RunAsync(Path.Combine(_dir.FullName, "two"), slots: 2);
        }
        finally
        {
            Orchestrator.Training.TorchRuntime.EnsureAvailable(processThreads);
        }

        static JsonElement Provenance(CellResultRecord r) => JsonDocument.Parse(r.ProvenanceJson).RootElement;
        // The two slots really trained at once: some cell started before another had finished.
        var spans = two.Select(c => (c.Cell.CellKey, End: c.Result!.FinishedAt,
            Start: c.Result.FinishedAt - TimeSpan.FromSeconds(Provenance(c.Result).GetProperty("wall_seconds").GetDouble()))).ToList();
        Assert.Contains(spans, a => spans.Any(b => b.CellKey != a.CellKey && b.Start < a.End && a.Start < b.End));
        foreach (var (cell, result) in one)
        {
            var other = two.Single(c => c.Cell.CellKey == cell.CellKey).Result!;
            Assert.Equal(result!.Outputs, other.Outputs);
            Assert.Equal(result.Metrics, other.Metrics);
            foreach (var field in new[] { "final_train_loss", "best_dev_loss", "best_step", "device" })
            {
                Assert.True(Provenance(result).GetProperty(field).GetRawText() == Provenance(other).GetProperty(field).GetRawText(),
                    $"{cell.Method} {cell.CellKey[..12]}: {field} {Provenance(result).GetProperty(field)} vs {Provenance(other).GetProperty(field)}");
            }

            Assert.StartsWith("cpu, 1 thread,", Provenance(other).GetProperty("device").GetString());
        }
    }

    [Fact]
    public async Task A_cell_whose_data_changed_fails_with_its_reason_after_its_attempts_and_the_sweep_completes()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        var good = plan.Cells[0];
        var tampered = good with { Dataset = good.Dataset with { ContentHash = new string('0', 64) } };
        var sweepId = "it-failing";
        var work = new[] { tampered }
            .Select(c => new CellWork(sweepId, c.Key, c.ToCanonicalJson(), c.Label, 2, 30, ["bleu"]))
            .ToList();

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var host = NewHost();
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await grains.GetGrain<ISweepGrain>(sweepId).SubmitAsync(new SweepSubmission(sweepId, "it-failing", Spec, "h", work, 2, 30, ["bleu"], null));
        var final = await SweepSubmitter.WaitAsync(grains, sweepId, null, TimeSpan.FromMilliseconds(100), cts.Token);
        Assert.Equal((0, 1), (final.Done, final.Failed));

        var rows = await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(sweepId, cts.Token);
        var result = Assert.Single(rows).Result;
        Assert.NotNull(result);
        Assert.Equal("failed", result.Status);
        Assert.Equal(2, result.Attempt);
        Assert.Contains("changed since the sweep was submitted", result.Error);
        await host.StopAsync(CancellationToken.None);
    }
}
