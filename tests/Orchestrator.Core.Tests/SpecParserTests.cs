using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Tests;

public sealed class SpecParserTests
{
    private static SweepSpec Parse(string yaml) => SpecParser.Parse(yaml, TestVocabulary.Value);

    private static SpecValidationException Refuse(string yaml) =>
        Assert.Throws<SpecValidationException>(() => Parse(yaml));

    [Fact]
    public void Minimal_spec_gets_the_protocol_defaults()
    {
        var spec = Parse(TestVocabulary.MinimalSpec);
        Assert.Equal("t", spec.Name);
        Assert.Equal([50, 100], spec.Grid.Sizes);
        Assert.Equal(2, spec.Grid.Subsamples);
        Assert.Equal([0, 1], spec.Grid.Seeds);
        Assert.Equal(5e-5, spec.Training.LearningRate);
        Assert.Equal(10, spec.Training.BatchSize);
        Assert.Equal(100, spec.Training.WarmupSteps);
        Assert.Equal(100, spec.Training.MaxStepsFor(50));
        Assert.Equal(["default"], spec.Dataset.Splits);
        Assert.Equal(["bleu"], spec.Metrics);
        Assert.Equal("greedy", spec.Decoding.Strategy);
        Assert.Equal(3, spec.Execution.MaxAttempts);
    }

    [Fact]
    public void The_demo_spec_in_the_repository_is_valid()
    {
        var path = Path.Combine(RepoRoot(), "sweeps", "demo.yaml");
        var spec = SpecParser.ParseFile(path, TestVocabulary.Value);
        Assert.Equal("demo", spec.Name);
        Assert.Equal([50, 100], spec.Grid.Sizes);
        Assert.Equal(2, spec.Grid.Subsamples);
        Assert.Equal(2, spec.Grid.Seeds.Count);
        Assert.Equal(["finetune", "prefix", "lora"], spec.Methods.Select(m => m.Name));
        Assert.NotNull(spec.Model.Pretrain);
    }

    private const string PerMethodTraining = """
        methods:
          - finetune
          - name: lora
            options: {r: 4}
            training: {learning_rate: 1.0e-2, max_steps: {50: 30}}
        """;

    [Fact]
    public void A_method_can_override_training_settings_and_inherits_the_rest()
    {
        var spec = Parse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", PerMethodTraining)
            + "\ntraining:\n  learning_rate: 1.0e-3\n  max_steps: 200\n  warmup_steps: 7\n");
        Assert.Null(spec.Methods[0].Training);
        var lora = spec.Methods[1].TrainingOr(spec.Training);
        Assert.Equal(1e-2, lora.LearningRate);
        Assert.Equal(30, lora.MaxStepsFor(50));
        Assert.Equal(200, lora.MaxStepsFor(100));   // inherited from the sweep's training
        Assert.Equal(7, lora.WarmupSteps);
        Assert.Equal(1e-3, spec.Methods[0].TrainingOr(spec.Training).LearningRate);
    }

    [Fact]
    public void Bad_per_method_training_is_reported_at_its_path()
    {
        var ex = Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", PerMethodTraining
            .Replace("learning_rate: 1.0e-2", "learning_rate: -1, bogus: 2").Replace("{50: 30}", "{70: 30}")));
        Assert.Contains(ex.Errors, e => e.Path == "methods[1].training.learning_rate");
        Assert.Contains(ex.Errors, e => e.Path.StartsWith("methods[1].training", StringComparison.Ordinal) && e.Message.Contains("bogus", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Path == "methods[1].training.max_steps.70" && e.Message.Contains("not in grid.sizes", StringComparison.Ordinal));
    }

    [Fact]
    public void The_same_method_twice_is_refused_because_results_group_by_method_name()
    {
        var ex = Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [lora, {name: lora, options: {r: 8}}]"));
        var error = Assert.Single(ex.Errors);
        Assert.Equal("methods[1]", error.Path);
        Assert.Contains("listed twice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_keys_are_refused_with_their_path_and_a_suggestion()
    {
        var ex = Refuse(TestVocabulary.MinimalSpec.Replace("  subsamples: 2", "  subsampels: 2"));
        var error = Assert.Single(ex.Errors);
        Assert.Equal("grid.subsampels", error.Path);
        Assert.Contains("unknown key", error.Message);
        Assert.Contains("did you mean 'subsamples'", error.Message);
        Assert.Contains("grid.subsampels", ex.Message);
        Assert.NotNull(error.Line);
    }

    [Fact]
    public void Unknown_top_level_key_is_refused()
    {
        var ex = Refuse(TestVocabulary.MinimalSpec + "\nbogus: 1\n");
        Assert.Contains(ex.Errors, e => e.Path == "bogus");
    }

    [Theory]
    [InlineData("  sizes: [50, abc]", "grid.sizes[1]", "expected an integer")]
    [InlineData("  sizes: 50", "grid.sizes", "expected a list of integers")]
    [InlineData("  sizes: [50, \"100\"]", "grid.sizes[1]", "expected an integer, got the string '100'")]
    [InlineData("  sizes: [50, 0]", "grid.sizes[1]", "must be between 1 and 10,000,000")]
    [InlineData("  sizes: [50, -5]", "grid.sizes[1]", "must be between 1 and 10,000,000")]
    [InlineData("  sizes: []", "grid.sizes", "empty")]
    [InlineData("  sizes: [50, 50]", "grid.sizes[1]", "listed twice")]
    public void Bad_sizes_are_refused_with_the_element_path(string sizesLine, string path, string message)
    {
        var ex = Refuse(TestVocabulary.MinimalSpec.Replace("  sizes: [50, 100]", sizesLine));
        Assert.Contains(ex.Errors, e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("training:\n  learning_rate: fast", "training.learning_rate", "expected a number")]
    [InlineData("training:\n  learning_rate: 0", "training.learning_rate", "greater than 0")]
    [InlineData("training:\n  batch_size: 2.5", "training.batch_size", "expected an integer")]
    [InlineData("training:\n  max_steps: {50: 10}", "training.max_steps", "no max_steps for size 100")]
    [InlineData("training:\n  max_steps: {50: 10, 100: 20, 200: 5}", "training.max_steps.200", "not in grid.sizes")]
    [InlineData("execution:\n  max_attempts: 0", "execution.max_attempts", "between 1 and 100")]
    [InlineData("decoding:\n  strategy: sampling", "decoding.strategy", "unknown decoding strategy")]
    [InlineData("decoding:\n  max_new_tokens: 5\n  min_new_tokens: 9", "decoding.min_new_tokens", "larger than max_new_tokens")]
    [InlineData("metrics: [bleu, cider]", "metrics[1]", "unknown metric 'cider'")]
    [InlineData("metrics: []", "metrics", "empty")]
    public void Wrong_types_and_values_are_refused_with_the_field_path(string extra, string path, string message)
    {
        var ex = Refuse(TestVocabulary.MinimalSpec + "\n" + extra + "\n");
        Assert.Contains(ex.Errors, e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Empty_methods_and_unknown_methods_are_refused()
    {
        Assert.Contains(Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: []")).Errors,
            e => e.Path == "methods" && e.Message.Contains("empty"));
        var unknown = Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [finetune, magic]"));
        Assert.Contains(unknown.Errors, e => e.Path == "methods[1]" && e.Message.Contains("unknown method 'magic'") && e.Message.Contains("lora"));
        Assert.DoesNotContain(unknown.Errors, e => e.Message.Contains("did you mean"));
        var typo = Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [finetune, lorra]") + "\nmetrics: [bleu, rogue]\n");
        Assert.Contains(typo.Errors, e => e.Path == "methods[1]" && e.Message.StartsWith("unknown method 'lorra' (did you mean 'lora'?) (known: ", StringComparison.Ordinal));
        Assert.Contains(typo.Errors, e => e.Path == "metrics[1]" && e.Message.StartsWith("unknown metric 'rogue' (did you mean 'rouge'?) (known: ", StringComparison.Ordinal));
        var classification = Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [finetune, Null-Prompt]"));
        Assert.Contains(classification.Errors, e => e.Path == "methods[1]" &&
            e.Message == "method 'null-prompt' is not applicable to generation: classification only: a masked LM's [MASK] prediction");
    }

    [Fact]
    public void Missing_required_sections_are_all_reported_at_once()
    {
        var ex = Refuse("name: x\n");
        Assert.Contains(ex.Errors, e => e.Path == "dataset");
        Assert.Contains(ex.Errors, e => e.Path == "model");
        Assert.Contains(ex.Errors, e => e.Path == "methods");
        Assert.Contains(ex.Errors, e => e.Path == "grid");
    }

    [Fact]
    public void Model_needs_exactly_one_of_preset_or_path()
    {
        var both = Refuse(TestVocabulary.MinimalSpec.Replace("  preset: tiny", "  preset: tiny\n  path: /models/x"));
        Assert.Contains(both.Errors, e => e.Path == "model" && e.Message.Contains("exactly one"));
        var unknown = Refuse(TestVocabulary.MinimalSpec.Replace("  preset: tiny", "  preset: huge"));
        Assert.Contains(unknown.Errors, e => e.Path == "model.preset" && e.Message.Contains("unknown preset 'huge'"));
    }

    [Fact]
    public void Seeds_as_a_count_expand_to_a_range_and_per_size_steps_are_read()
    {
        var spec = Parse(TestVocabulary.MinimalSpec.Replace("  seeds: [0, 1]", "  seeds: 3") + "\ntraining:\n  max_steps: {50: 80, 100: 160}\n");
        Assert.Equal([0, 1, 2], spec.Grid.Seeds);
        Assert.Equal(80, spec.Training.MaxStepsFor(50));
        Assert.Equal(160, spec.Training.MaxStepsFor(100));
    }

    [Theory]
    [InlineData("", "(root)")]
    [InlineData("name: [unclosed", "(yaml)")]
    [InlineData("- a\n- b\n", "(root)")]
    public void Broken_or_empty_documents_are_refused(string yaml, string path)
    {
        var ex = Assert.Throws<SpecValidationException>(() => SpecParser.Parse(yaml, TestVocabulary.Value));
        Assert.Contains(ex.Errors, e => e.Path == path);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var ex = Assert.Throws<SpecValidationException>(() => SpecParser.ParseFile("/nonexistent/spec.yaml", TestVocabulary.Value));
        Assert.Contains("/nonexistent/spec.yaml", ex.Message);
    }

    [Fact]
    public void Invalid_sweep_names_are_refused()
    {
        var ex = Refuse(TestVocabulary.MinimalSpec.Replace("name: t", "name: \"bad name/with slash\""));
        Assert.Contains(ex.Errors, e => e.Path == "name");
    }

    internal static string RepoRoot() => TestData.RepoRoot();
}
