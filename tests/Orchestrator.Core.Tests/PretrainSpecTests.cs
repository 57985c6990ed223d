using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Synthetic;

namespace Orchestrator.Core.Tests;

public sealed class PretrainSpecTests
{
    private static string Spec(string model) => $$"""
        name: t
        dataset:
          kind: synthetic-e2e
          options: {mrs: 120, seed: 3}
        model:
        {{string.Join("\n", model.Split('\n').Select(l => "  " + l))}}
        methods: [finetune]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0]
        """;

    [Fact]
    public void Pretrain_section_is_read_with_defaults()
    {
        var spec = SpecParser.Parse(Spec("""
            preset: tiny
            init_seed: 4
            pretrain: {corpus: synthetic, steps: 300, seed: 9}
            """), TestVocabulary.Value);
        Assert.Equal("tiny", spec.Model.Preset);
        Assert.Null(spec.Model.Path);
        Assert.Equal(4, spec.Model.InitSeed);
        var p = Assert.IsType<PretrainSpec>(spec.Model.Pretrain);
        Assert.Equal(("synthetic", 300, 9), (p.Corpus, p.Steps, p.Seed));
        Assert.Equal(PretrainSpec.DefaultBatchSize, p.BatchSize);
        Assert.Equal(PretrainSpec.DefaultLearningRate, p.LearningRate);
        Assert.Equal(PretrainSpec.DefaultWarmupSteps, p.WarmupSteps);
        Assert.Equal(PretrainSpec.DefaultSequenceLength, p.SequenceLength);
        Assert.Equal(PretrainSpec.DefaultVocabSize, p.VocabSize);
        Assert.Equal(PretrainSpec.DefaultDocuments, p.Documents);
    }

    [Fact]
    public void Every_pretrain_option_is_read()
    {
        var spec = SpecParser.Parse(Spec("""
            preset: tiny
            pretrain:
              corpus: synthetic
              steps: 10
              seed: 1
              batch_size: 4
              learning_rate: 1.0e-3
              warmup_steps: 2
              sequence_length: 64
              vocab_size: 512
              documents: 100
            """), TestVocabulary.Value);
        Assert.Equal(new PretrainSpec("synthetic", 10, 1, 4, 1e-3, 2, 64, 512, 100), spec.Model.Pretrain);
    }

    [Fact]
    public void Problems_name_each_bad_value_as_the_parser_would()
    {
        Assert.Empty(new PretrainSpec("synthetic", 10, 0).Problems());
        var problems = new PretrainSpec("", 0, -1, BatchSize: 0, LearningRate: 0, WarmupSteps: -1, SequenceLength: 4, VocabSize: 10, Documents: 0).Problems();
        Assert.Equal(["corpus", "steps", "seed", "batch_size", "learning_rate", "warmup_steps", "sequence_length", "vocab_size", "documents"],
            problems.Select(p => p[..p.IndexOf(':')]));
    }

    [Fact]
    public void Spec_without_pretrain_is_unchanged()
    {
        var spec = SpecParser.Parse(TestVocabulary.MinimalSpec, TestVocabulary.Value);
        Assert.Null(spec.Model.Pretrain);
    }

    [Theory]
    [InlineData("preset: tiny\npretrain: {corpus: synthetic, stepz: 3}", "model.pretrain.stepz", "did you mean 'steps'")]
    [InlineData("path: some/folder\npretrain: {corpus: synthetic}", "model.pretrain", "cannot be combined with 'path'")]
    [InlineData("preset: tiny\npretrain: {steps: 3}", "model.pretrain.corpus", "required")]
    [InlineData("preset: tiny\npretrain: {corpus: synthetic, steps: 0}", "model.pretrain.steps", "between 1 and")]
    [InlineData("preset: tiny\npretrain: {corpus: synthetic, learning_rate: -1}", "model.pretrain.learning_rate", "greater than 0")]
    [InlineData("preset: tiny\npretrain: {corpus: synthetic, vocab_size: 100}", "model.pretrain.vocab_size", "between 260")]
    [InlineData("preset: tiny\npretrain: {corpus: texts.txt, documents: 5}", "model.pretrain.documents", "synthetic corpus")]
    [InlineData("preset: tiny\npretrain: [1, 2]", "model.pretrain", "expected a mapping")]
    public void Bad_pretrain_sections_are_reported_with_their_path(string model, string field, string message)
    {
        var e = Assert.Throws<SpecValidationException>(() => SpecParser.Parse(Spec(model), TestVocabulary.Value));
        Assert.Contains(e.Errors, x => x.Path == field && x.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Pretrained_identity_hashes_its_inputs_and_round_trips()
    {
        var dir = Path.GetTempPath();
        ModelIdentity Resolve(int steps = 300, int seed = 9, int initSeed = 0, string preset = "tiny") =>
            Data.SweepPlanner.ResolveModel(new ModelSpec(preset, null, initSeed, new PretrainSpec("synthetic", steps, seed)), dir);

        var a = Resolve();
        Assert.Equal("tiny", a.Preset);
        Assert.StartsWith(PretrainRecipe.Scheme, a.Path);
        Assert.Equal(a, Resolve());
        Assert.NotEqual(a.ContentHash, Resolve(steps: 301).ContentHash);
        Assert.NotEqual(a.ContentHash, Resolve(seed: 10).ContentHash);
        Assert.NotEqual(a.ContentHash, Resolve(initSeed: 1).ContentHash);
        Assert.NotEqual(a.ContentHash, Resolve(preset: "test").ContentHash);
        Assert.NotEqual(a.ContentHash, Data.SweepPlanner.ResolveModel(new ModelSpec("tiny", null, 0), dir).ContentHash);

        Assert.True(PretrainRecipe.TryFromIdentity(a, out var recipe));
        Assert.Equal(a, recipe.ToIdentity());
        Assert.Equal(300, recipe.Steps);
        Assert.Equal(PretrainRecipe.CurrentFormat, recipe.Format);
        Assert.False(PretrainRecipe.TryFromIdentity(new ModelIdentity("tiny", null, 0, a.ContentHash), out _));
        Assert.Throws<FormatException>(() => PretrainRecipe.TryFromIdentity(a with { ContentHash = new string('0', 64) }, out _));
    }

    [Fact]
    public void File_corpus_is_identified_by_content_not_by_path()
    {
        var root = Directory.CreateTempSubdirectory("orch-corpus-");
        try
        {
            File.WriteAllText(Path.Combine(root.FullName, "a.txt"), "one line\nanother line\n");
            File.WriteAllText(Path.Combine(root.FullName, "b.txt"), "one line\nanother line\n");
            ModelIdentity Resolve(string corpus) =>
                Data.SweepPlanner.ResolveModel(new ModelSpec("tiny", null, 0, new PretrainSpec(corpus, 10, 0, Documents: 0)), root.FullName);

            var a = Resolve("a.txt");
            var b = Resolve("b.txt");
            Assert.Equal(a.ContentHash, b.ContentHash);
            Assert.NotEqual(a.Path, b.Path);
            Assert.True(PretrainRecipe.TryFromIdentity(a, out var recipe));
            Assert.Equal(Path.Combine(root.FullName, "a.txt"), recipe.CorpusPath);
            Assert.Equal(["one line", "another line"], PretrainCorpus.Load(recipe.Corpus, recipe.CorpusPath, recipe.CorpusHash, 0, 0));

            File.AppendAllText(Path.Combine(root.FullName, "a.txt"), "a third\n");
            Assert.NotEqual(a.ContentHash, Resolve("a.txt").ContentHash);
            Assert.Throws<DatasetException>(() => PretrainCorpus.Load(recipe.Corpus, recipe.CorpusPath, recipe.CorpusHash, 0, 0));

            var e = Assert.Throws<SpecValidationException>(() => Resolve("missing.txt"));
            Assert.Contains(e.Errors, x => x.Path == "model.pretrain.corpus" && x.Message.Contains("not found", StringComparison.Ordinal));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void Model_folder_must_be_in_hugging_face_layout()
    {
        var root = Directory.CreateTempSubdirectory("orch-model-");
        try
        {
            var e = Assert.Throws<SpecValidationException>(() => Data.SweepPlanner.ResolveModel(new ModelSpec(null, root.FullName, 0), root.FullName));
            Assert.Contains(e.Errors, x => x.Path == "model.path" && x.Message.Contains("config.json", StringComparison.Ordinal)
                && x.Message.Contains("model.safetensors", StringComparison.Ordinal) && x.Message.Contains("vocab.json", StringComparison.Ordinal));

            foreach (var f in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt" })
            {
                File.WriteAllText(Path.Combine(root.FullName, f), f);
            }

            var identity = Data.SweepPlanner.ResolveModel(new ModelSpec(null, root.FullName, 0), root.FullName);
            Assert.Equal(root.FullName, identity.Path);
            File.WriteAllText(Path.Combine(root.FullName, "merges.txt"), "changed");
            Assert.NotEqual(identity.ContentHash, Data.SweepPlanner.ResolveModel(new ModelSpec(null, root.FullName, 0), root.FullName).ContentHash);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_base_identity_is_part_of_every_cell_key()
    {
        string Yaml(int steps) => Spec($"preset: tiny\npretrain: {{corpus: synthetic, steps: {steps}, seed: 1}}");
        var a = Data.SweepPlanner.PlanText(Yaml(100), TestVocabulary.Value, Path.GetTempPath());
        var b = Data.SweepPlanner.PlanText(Yaml(200), TestVocabulary.Value, Path.GetTempPath());
        Assert.Equal(a.Cells.Count, b.Cells.Count);
        Assert.All(a.Cells, c => Assert.Equal(a.Model, c.Model));
        Assert.Empty(a.Cells.Select(c => c.Key).Intersect(b.Cells.Select(c => c.Key)));
        var again = CellDefinition.FromJson(a.Cells[0].ToCanonicalJson());
        Assert.Equal(a.Cells[0].Key, again.Key);
        Assert.True(PretrainRecipe.TryFromIdentity(again.Model, out _));
    }

    [Fact]
    public void Synthetic_pretraining_corpus_is_deterministic_and_is_not_the_evaluation_data()
    {
        var a = PretrainCorpus.Generate(400, 5);
        Assert.Equal(a, PretrainCorpus.Generate(400, 5));
        Assert.NotEqual(a, PretrainCorpus.Generate(400, 6));
        Assert.Equal(400, a.Count);
        Assert.True(a.Distinct().Count() > 390, "documents should rarely repeat");

        var e2e = SyntheticE2e.Generate(400, 7);
        var sentences = e2e.SelectMany(e => e.References).SelectMany(r => r.Split(". ")).Select(s => s.TrimEnd('.')).ToHashSet();
        var corpusSentences = a.SelectMany(d => d.Split(". ")).Select(s => s.TrimEnd('.')).ToHashSet();
        Assert.Empty(corpusSentences.Intersect(sentences));
        var names = e2e.Select(e => e.Source.Split(" | ")[0]["name : ".Length..]).Distinct().ToList();
        Assert.True(names.Count > 10);
        Assert.DoesNotContain(a, d => names.Any(n => d.Contains(n, StringComparison.Ordinal)));

        // About a third are listings (a record, then its description) with keys that are not E2E's attributes.
        var listings = a.Where(d => d.StartsWith("venue : ", StringComparison.Ordinal)).ToList();
        Assert.InRange(listings.Count, 100, 170);
        string[] e2eKeys = ["name :", "eatType :", "food :", "priceRange :", "customer rating :", "area :", "familyFriendly :", "near :"];
        Assert.DoesNotContain(a, d => e2eKeys.Any(k => d.Contains(k, StringComparison.Ordinal)));
        Assert.All(listings, d =>
        {
            var venue = d.Split(" | ")[0]["venue : ".Length..];
            Assert.Contains(venue + " is a", d, StringComparison.Ordinal);
        });
        Assert.DoesNotContain(a.Except(listings), d => d.Contains(" : ", StringComparison.Ordinal) || d.Contains(" | ", StringComparison.Ordinal));
    }
}
