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

    private static readonly string[] ProvenanceFields =
    [
        "code_version", "cell_code_version", "dataset_hash", "split", "manifest_hash", "base_model_hash", "base", "model", "method",
        "method_options", "method_options_effective", "trainable_parameters", "training", "decoding", "decoding_banned_tokens",
        "seed", "worker", "device", "attempt", "wall_seconds", "timings", "peak_rss_bytes", "train_examples", "dev_examples",
        "eval_inputs", "steps", "best_step", "best_dev_loss", "final_train_loss", "train_seconds", "train_tokens_per_second",
        "packing", "dependencies", "reused_training",
    ];

    private static string[] Fields(JsonElement element) => element.EnumerateObject().Select(p => p.Name).ToArray();

    /// <summary>
    /// The stored provenance keeps its field names, order and nesting for every shape a trial writes (a preset or a folder
    /// base; trained alone, as a pack of one, or in a pack): readers of stored results depend on them.
    /// </summary>
    [Fact]
    public void Provenance_writes_every_field_in_each_shape_a_trial_stores()
    {
        var data = Path.Combine(_root.FullName, "data");
        var runner = new TrialRunner(Bleu, new BaseModelCache(data));
        string Methods(string spec, string method) => spec.Replace("methods: [finetune]", $"methods: [{method}]", StringComparison.Ordinal)
            .Replace("seeds: [0]", "seeds: [0, 1]", StringComparison.Ordinal)
            .Replace("eval_every: 6}", "eval_every: 6, base_dropout: eval}", StringComparison.Ordinal);
        var preset = SweepPlanner.PlanText(Spec("{preset: test, init_seed: 2}", "{strategy: greedy, max_new_tokens: 6}"), Vocabulary, _root.FullName);
        var lora = SweepPlanner.PlanText(Methods(Spec("{preset: test, init_seed: 2}", "{strategy: greedy, max_new_tokens: 6}"), "lora"), Vocabulary, _root.FullName);
        string folder = Pretraining.PretrainedBases.Ensure(PretrainTests.Recipe(_root.FullName, steps: 4, seed: 4), data);
        var fromFolder = SweepPlanner.PlanText(Spec($"{{path: {folder}}}", "{strategy: greedy, max_new_tokens: 6}"), Vocabulary, _root.FullName);
        Assert.False(TrialRunner.CanPack(preset.Cells[0]));
        Assert.True(TrialRunner.CanPack(lora.Cells[0]));

        var alone = runner.Run(preset.Cells[0], ["bleu"], "w", 1, null, CancellationToken.None);
        var packOfOne = runner.Run(lora.Cells[0], ["bleu"], "w", 2, null, CancellationToken.None);
        var onFolder = runner.Run(fromFolder.Cells[0], ["bleu"], "w", 1, null, CancellationToken.None);
        var requests = new Queue<PackRequest>(lora.Cells.Select(c => new PackRequest(c, ["bleu"], "w", 1, CancellationToken.None)));
        var packed = new List<TrialOutcome>();
        runner.RunPack(2, () => requests.Count > 0 ? requests.Dequeue() : null, (_, outcome, error) =>
        {
            Assert.Null(error);
            packed.Add(outcome!);
        }, CancellationToken.None);
        Assert.Equal(2, packed.Count);

        var shapes = new List<(TrialOutcome Outcome, string[] Base, string[] Packing)>
        {
            (alone, ["kind", "preset", "init_seed", "tokenizer"], ["packed"]),
            (packOfOne, ["kind", "preset", "init_seed", "tokenizer"], ["packed", "pad_length"]),
            (onFolder, ["kind", "directory", "preset", "pretrain", "pretrain_validation_loss", "tokenizer", "shared_weights"], ["packed"]),
            (packed[0], ["kind", "preset", "init_seed", "tokenizer"], ["packed", "packed_with", "largest_pack", "capacity", "pad_length"]),
        };
        foreach (var (outcome, baseFields, packingFields) in shapes)
        {
            output.WriteLine(outcome.ProvenanceJson);
            using var provenance = JsonDocument.Parse(outcome.ProvenanceJson);
            var root = provenance.RootElement;
            Assert.Equal(ProvenanceFields, Fields(root));
            Assert.Equal(baseFields, Fields(root.GetProperty("base")));
            Assert.Equal(packingFields, Fields(root.GetProperty("packing")));
            Assert.Equal(["setup", "train", "decode", "score"], Fields(root.GetProperty("timings")));
            Assert.Equal(JsonValueKind.Object, root.GetProperty("model").ValueKind);
            Assert.Equal(JsonValueKind.Object, root.GetProperty("training").ValueKind);
            Assert.Equal(JsonValueKind.Object, root.GetProperty("decoding").ValueKind);
            Assert.Equal(JsonValueKind.Object, root.GetProperty("method_options_effective").ValueKind);
            Assert.Equal(JsonValueKind.Array, root.GetProperty("dependencies").ValueKind);
            Assert.Equal(outcome.TrainableParameters, root.GetProperty("trainable_parameters").GetInt64());
            Assert.Equal(outcome.Training.Steps, root.GetProperty("steps").GetInt32());
            Assert.Equal(outcome.WallSeconds, root.GetProperty("wall_seconds").GetDouble());
            Assert.False(root.GetProperty("reused_training").GetBoolean());
        }

        Assert.Equal(2, JsonDocument.Parse(packOfOne.ProvenanceJson).RootElement.GetProperty("attempt").GetInt32());
        Assert.Equal("folder", JsonDocument.Parse(onFolder.ProvenanceJson).RootElement.GetProperty("base").GetProperty("kind").GetString());
        var pack = JsonDocument.Parse(packed[0].ProvenanceJson).RootElement.GetProperty("packing");
        Assert.True(pack.GetProperty("packed").GetBoolean());
        Assert.Equal(2, pack.GetProperty("capacity").GetInt32());
        Assert.Equal(JsonValueKind.Array, pack.GetProperty("packed_with").ValueKind);
        Assert.Equal(lora.Cells.Select(c => c.Key).Order(StringComparer.Ordinal),
            packed.SelectMany(o => JsonDocument.Parse(o.ProvenanceJson).RootElement.GetProperty("packing").GetProperty("packed_with").EnumerateArray())
                .Select(e => e.GetString()!).Distinct().Order(StringComparer.Ordinal));
    }
}
