using Orchestrator.Core.Cells;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// The warnings of <c>validate</c>, <c>run</c> and <c>results</c>, through the real command line: PEFT methods on a randomly
/// initialised base, a time estimate before anything runs, under-trained cells (best dev step = last step) and a method whose
/// cells all score near zero. Results are written straight into the SQLite file (no training).
/// </summary>
public sealed class ResearchWarningsTests : IDisposable
{
    private const string Spec = """
        name: warn
        dataset:
          kind: synthetic-e2e
          options: {mrs: 80, seed: 5}
          eval_limit: 4
        model:
          preset: tiny
        methods: [finetune, prefix, lora]
        grid:
          sizes: [10]
          subsamples: 2
          seeds: [0]
        training:
          max_steps: 300
          eval_every: 50
        metrics: [bleu]
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-warn-");

    public void Dispose() => _dir.Delete(recursive: true);

    private Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) =>
        CliCapture.RunAsync([.. args, "--data-dir", _dir.FullName]);

    [Fact]
    public async Task Validate_warns_about_PEFT_on_a_random_base_and_estimates_the_time()
    {
        var random = Path.Combine(_dir.FullName, "random.yaml");
        await File.WriteAllTextAsync(random, Spec);
        var (exit, output, error) = await CliCapture.RunAsync(["validate", random]);
        Assert.True(exit == 0, output + error);
        Assert.Contains("warning: lora, prefix train on a randomly initialised base (model.preset tiny", error, StringComparison.Ordinal);
        Assert.DoesNotContain("finetune", error, StringComparison.Ordinal); // fine-tuning trains the base itself
        Assert.Matches(@"estimate: about \d+ s for 6 cell\(s\) to train \(1,800 training steps\) on \d+ core\(s\)", output);

        // A pretrained base: no warning, and the estimate counts the pretraining.
        var pretrained = Path.Combine(_dir.FullName, "pretrained.yaml");
        await File.WriteAllTextAsync(pretrained, Spec.Replace("  preset: tiny", "  preset: tiny\n  pretrain: {corpus: synthetic, steps: 1500}"));
        (exit, output, error) = await CliCapture.RunAsync(["validate", pretrained]);
        Assert.True(exit == 0, output + error);
        Assert.DoesNotContain("warning:", error, StringComparison.Ordinal);
        Assert.Contains("to pretrain the base unless it is cached", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Results_warn_about_under_trained_cells_and_a_method_near_zero()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        var cells = plan.Cells.Select(c => new CellDescriptor(c.Key, c.Dataset.Kind, c.Split, c.Method, c.Size, c.Subsample, c.Seed, c.ToCanonicalJson())).ToList();
        await using (var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath))
        {
            await store.EnsureSchemaAsync();
            await store.SaveSweepAsync(new SweepRecord(plan.SweepId, "warn", plan.SpecYaml, plan.SpecHash, DateTimeOffset.UtcNow, cells.Count) { Metrics = ["bleu"] }, cells);
            foreach (var c in cells)
            {
                // finetune: best step 150 of 300, BLEU 30; prefix: best step = last, BLEU 20; lora: best step 250, BLEU 0.0x.
                var (best, bleu) = c.Method switch { "finetune" => (150, 30.0), "prefix" => (300, 20.0), _ => (250, 0.02 + c.Subsample / 100.0) };
                await store.UpsertResultAsync(new CellResultRecord(c.CellKey, 1, CellStatus.Succeeded, new Dictionary<string, double> { ["bleu"] = bleu },
                    null, "w1", "cpu", 1.5, 1000, $$"""{"steps":300,"best_step":{{best}},"method":"{{c.Method}}"}""", ["a", "b"], DateTimeOffset.UtcNow));
            }
        }

        var (exit, output, error) = await CliAsync("results", "warn", "--format", "csv");
        Assert.True(exit == 0, error);
        Assert.DoesNotContain("warning", output, StringComparison.Ordinal); // the CSV stays clean; warnings go to stderr
        Assert.Contains("warning: under-trained: 2 of 2 prefix cell(s) kept their last step (max_steps 300)", error, StringComparison.Ordinal);
        Assert.Contains("raise training.max_steps", error, StringComparison.Ordinal);
        Assert.DoesNotContain("finetune cell", error, StringComparison.Ordinal);
        Assert.Contains("warning: every lora cell scores near zero: bleu 0.02–0.03 over 2 cell(s)", error, StringComparison.Ordinal);
        Assert.DoesNotContain("every prefix cell", error, StringComparison.Ordinal);

        // No warnings when nothing is wrong.
        Assert.Empty(ResearchWarnings.ForResults(cells.Where(c => c.Method == "finetune")
            .Select(c => (c, (CellResultRecord?)new CellResultRecord(c.CellKey, 1, CellStatus.Succeeded, new Dictionary<string, double> { ["bleu"] = 30 },
                null, "w1", "cpu", 1, 1, """{"steps":300,"best_step":200}""", [], DateTimeOffset.UtcNow))).ToList()));
    }
}
