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

/// <summary>
/// A sweep on a random-init <c>llama-tiny</c> base end to end (in-process silo, queue, worker, SQLite store): the methods
/// that fit the family train, decode and score; LoRA, IA3, prefix, prompt and ptuning-v2 cells train packed (one torch thread
/// each, the worker's default) and give the same bits as alone; a method that
/// cannot train on the family (BitFit: no biases) fails with that reason.
/// </summary>
public sealed class LlamaSweepTests : IDisposable
{
    private const string Spec = """
        name: it-llama
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 4
        model:
          preset: llama-tiny
        methods:
          - finetune
          - {name: lora, training: {learning_rate: 1.0e-2}}
          - {name: ia3, training: {learning_rate: 1.0e-2}}
          - {name: prefix, options: {length: 2, hidden: 16}}
          - {name: prompt, options: {length: 2}}
          - {name: ptuning-v2, options: {length: 2}}
          - {name: llama-adapter, options: {length: 2}}
        grid:
          sizes: [10]
          subsamples: 2
          seeds: [0]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 8
          warmup_steps: 2
          eval_every: 4
        decoding:
          strategy: greedy
          max_new_tokens: 8
          min_new_tokens: 1
        execution:
          max_attempts: 1
          lease_seconds: 60
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-it-llama-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static JsonElement Provenance(CellResultRecord r) => JsonDocument.Parse(r.ProvenanceJson).RootElement;

    private static async Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> RunAsync(
        SweepPlan plan, string dir, int pack, int expectedDone, int expectedFailed, CancellationToken ct)
    {
        using var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = dir, WorkerSlots = 1, PackSize = pack });
        await host.StartAsync(ct);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await SweepSubmitter.SubmitAsync(grains, plan);
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), ct);
        Assert.Equal((expectedDone, expectedFailed), (final.Done, final.Failed));
        var rows = await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(plan.SweepId, ct);
        await host.StopAsync(CancellationToken.None);
        return rows;
    }

    [Fact]
    public async Task Every_method_that_fits_trains_and_scores_on_llama_tiny_and_packed_cells_match_alone_bit_for_bit()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(14, plan.Cells.Count);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var packed = await RunAsync(plan, Path.Combine(_dir.FullName, "packed"), pack: 2, 14, 0, cts.Token);
        var alone = await RunAsync(plan, Path.Combine(_dir.FullName, "alone"), pack: 1, 14, 0, cts.Token);

        var mismatches = new List<string>();
        foreach (var (cell, result) in packed)
        {
            Assert.NotNull(result);
            Assert.Equal("succeeded", result.Status);
            Assert.InRange(result.Metrics["bleu"], 0.0, 100.0);
            Assert.Equal(4, result.Outputs.Count);
            var provenance = Provenance(result);
            Assert.Equal("llama-tiny", provenance.GetProperty("base").GetProperty("preset").GetString());
            Assert.Equal(2, provenance.GetProperty("model").GetProperty("KeyValueHeads").GetInt32()); // the Llama config, not GPT-2's
            Assert.True(provenance.GetProperty("trainable_parameters").GetInt64() > 0);

            // Every packable method trains packed on the family (TrialRunner.CanPack): LoRA, IA3 and the virtual-token methods.
            bool packable = cell.Method is "lora" or "ia3" or "prefix" or "prompt" or "ptuning-v2";
            Assert.Equal(packable, provenance.GetProperty("packing").GetProperty("packed").GetBoolean());
            var single = alone.Single(c => c.Cell.CellKey == cell.CellKey).Result!;
            Assert.False(Provenance(single).GetProperty("packing").GetProperty("packed").GetBoolean());
            if (!single.Metrics.SequenceEqual(result.Metrics)) mismatches.Add($"{cell.Method}: metrics");
            if (!single.Outputs.SequenceEqual(result.Outputs)) mismatches.Add($"{cell.Method}: outputs");
            foreach (var field in new[] { "final_train_loss", "best_dev_loss", "best_step" })
            {
                if (Provenance(single).GetProperty(field).GetRawText() != provenance.GetProperty(field).GetRawText())
                {
                    mismatches.Add($"{cell.Method}: {field} alone {Provenance(single).GetProperty(field)} vs packed {provenance.GetProperty(field)}");
                }
            }
        }

        Assert.True(mismatches.Count == 0, string.Join("; ", mismatches));
    }

    [Fact]
    public void The_llama_tiny_demo_spec_plans_its_cells_on_the_llama_preset()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Orchestrator.sln"))) root = root.Parent;
        Assert.NotNull(root);
        var text = File.ReadAllText(Path.Combine(root.FullName, "sweeps", "llama-tiny-demo.yaml"));
        var plan = SweepPlanner.PlanText(text, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Equal(12, plan.Cells.Count); // 6 methods × 1 size × 2 subsamples × 1 seed
        Assert.All(plan.Cells, c => Assert.Equal("llama-tiny", c.Model.Preset));
        Assert.Equal(["finetune", "ia3", "llama-adapter", "lora", "prefix", "prompt"], plan.Cells.Select(c => c.Method).Distinct().Order());
    }

    [Fact]
    public async Task Bitfit_on_a_llama_base_without_biases_fails_with_the_reason()
    {
        var spec = Spec.Replace("name: it-llama", "name: it-llama-bitfit")
            .Replace("""
                  - finetune
                  - {name: lora, training: {learning_rate: 1.0e-2}}
                  - {name: ia3, training: {learning_rate: 1.0e-2}}
                  - {name: prefix, options: {length: 2, hidden: 16}}
                  - {name: prompt, options: {length: 2}}
                  - {name: ptuning-v2, options: {length: 2}}
                  - {name: llama-adapter, options: {length: 2}}
                """, "  - bitfit\n")
            .Replace("subsamples: 2", "subsamples: 1");
        var plan = SweepPlanner.PlanText(spec, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.Single(plan.Cells);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var rows = await RunAsync(plan, Path.Combine(_dir.FullName, "bitfit"), pack: 1, 0, 1, cts.Token);
        var result = Assert.Single(rows).Result;
        Assert.NotNull(result);
        Assert.Equal("failed", result.Status);
        Assert.Contains("bitfit on a llama base: the base has no biases to train", result.Error);
    }
}
