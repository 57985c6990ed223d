using System.Text.Json;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Evaluation;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;

namespace Orchestrator.Training.Tests;

public sealed class TrialRunnerTests(ITestOutputHelper output) : IDisposable
{
    private static readonly SpecVocabulary Vocabulary = new(
        PeftRegistry.Names, DatasetCatalog.Kinds, ["bleu"], TrialRunner.DecodingStrategies, Gpt2Config.PresetNames);

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-trial-");

    public void Dispose() => _root.Delete(recursive: true);

    private static IEnumerable<(string Name, double Value)> Bleu(string metric, IReadOnlyList<string> outputs, IReadOnlyList<IReadOnlyList<string>> references)
    {
        Assert.Equal("bleu", metric);
        yield return ("bleu", SacreBleu.CorpusFromGroups(outputs, references).Score);
    }

    private static string Spec(string model, string decoding) => $$"""
        name: t
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 5
        model: {{model}}
        methods: [finetune]
        grid: {sizes: [10], subsamples: 1, seeds: [0]}
        training: {learning_rate: 3.0e-3, batch_size: 5, max_steps: 12, warmup_steps: 2, eval_every: 6}
        decoding: {{decoding}}
        metrics: [bleu]
        """;

    private const string Pretrained =
        "{preset: tiny, pretrain: {corpus: synthetic, steps: 30, seed: 1, batch_size: 8, sequence_length: 64, vocab_size: 400, documents: 300, warmup_steps: 5, learning_rate: 3.0e-3}}";

    [Fact]
    public void A_cell_on_a_pretrained_base_trains_decodes_and_scores_and_the_base_is_made_once()
    {
        var log = new List<string>();
        var bases = new BaseModelCache(Path.Combine(_root.FullName, "data")) { Log = log.Add };
        var runner = new TrialRunner(Bleu, bases);
        var beam = SweepPlanner.PlanText(Spec(Pretrained, "{strategy: beam, beam_size: 3, max_new_tokens: 12, min_new_tokens: 2}"), Vocabulary, _root.FullName);
        var greedy = SweepPlanner.PlanText(Spec(Pretrained, "{strategy: greedy, max_new_tokens: 12, min_new_tokens: 2}"), Vocabulary, _root.FullName);
        Assert.Equal(beam.Model, greedy.Model);

        var first = runner.Run(beam.Cells[0], ["bleu"], "w1", 1, null, CancellationToken.None);
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        long live = stats.TensorStatistics.ThreadTotalLiveCount;
        var second = runner.Run(greedy.Cells[0], ["bleu"], "w1", 1, null, CancellationToken.None);
        Assert.Equal(live, stats.TensorStatistics.ThreadTotalLiveCount); // the base stays cached, nothing else survives a trial
        foreach (var line in log) output.WriteLine(line);
        Assert.Single(log, l => l.StartsWith("Pretraining base", StringComparison.Ordinal));
        Assert.Equal(1, bases.Count);

        foreach (var outcome in new[] { first, second })
        {
            Assert.Equal(5, outcome.Outputs.Count);
            Assert.InRange(outcome.Metrics["bleu"], 0, 100);
            Assert.Equal(12, outcome.Training.Steps);
            Assert.True(outcome.PeakMemoryBytes > 0 && outcome.WallSeconds > 0);
            Assert.True(outcome.Timings.Train > 0 && outcome.Timings.Decode > 0);
            Assert.Equal(outcome.TrainableParameters, Gpt2Config.Preset("tiny", 400).ParameterCount);
            using var provenance = JsonDocument.Parse(outcome.ProvenanceJson);
            var root = provenance.RootElement;
            Assert.Equal(beam.Model.ContentHash, root.GetProperty("base_model_hash").GetString());
            Assert.Equal("pretrained", root.GetProperty("base").GetProperty("kind").GetString());
            Assert.Equal("Gpt2BpeTokenizer", root.GetProperty("base").GetProperty("tokenizer").GetString());
            Assert.True(root.GetProperty("decoding_banned_tokens").GetInt32() > 0, "newline tokens are banned");
            output.WriteLine($"bleu {outcome.Metrics["bleu"]:F2}; {outcome.Timings}; first output: {outcome.Outputs[0]}");
        }

        Assert.Contains("\"strategy\":\"beam\"", first.ProvenanceJson, StringComparison.Ordinal);
        Assert.Contains("\"strategy\":\"greedy\"", second.ProvenanceJson, StringComparison.Ordinal);
    }

    [Fact]
    public void Local_checkpoint_folders_and_plain_presets_still_work()
    {
        var data = Path.Combine(_root.FullName, "data");
        var recipe = PretrainTests.Recipe(_root.FullName, steps: 10, seed: 4);
        string folder = Pretraining.PretrainedBases.Ensure(recipe, data);
        var runner = new TrialRunner(Bleu, new BaseModelCache(data));

        var fromFolder = SweepPlanner.PlanText(Spec($"{{path: {folder}}}", "{strategy: greedy, max_new_tokens: 8}"), Vocabulary, _root.FullName);
        var outcome = runner.Run(fromFolder.Cells[0], ["bleu"], "w", 1, null, CancellationToken.None);
        using (var provenance = JsonDocument.Parse(outcome.ProvenanceJson))
        {
            Assert.Equal("folder", provenance.RootElement.GetProperty("base").GetProperty("kind").GetString());
        }

        var preset = SweepPlanner.PlanText(Spec("{preset: test, init_seed: 2}", "{strategy: greedy, max_new_tokens: 8}"), Vocabulary, _root.FullName);
        outcome = runner.Run(preset.Cells[0], ["bleu"], "w", 1, null, CancellationToken.None);
        Assert.Equal(5, outcome.Outputs.Count);
        using (var provenance = JsonDocument.Parse(outcome.ProvenanceJson))
        {
            Assert.Equal("preset", provenance.RootElement.GetProperty("base").GetProperty("kind").GetString());
        }

        Assert.Equal(1, runner.Bases.Count);
    }
}
