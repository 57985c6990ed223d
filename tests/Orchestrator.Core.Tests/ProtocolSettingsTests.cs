using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Core.Tests;

/// <summary>
/// The paper's training and decoding conventions as spec settings: base dropout (per method default, per method override),
/// the loss normalisation and beam scoring, each in the cell key exactly when it changes what runs.
/// </summary>
public sealed class ProtocolSettingsTests
{
    private static SweepPlan Plan(string yaml) => SweepPlanner.PlanText(yaml, TestVocabulary.Value, Path.GetTempPath());

    private static string WithMethods(string methods, string extra = "") =>
        TestVocabulary.MinimalSpec.Replace("methods: [finetune]", methods) + extra;

    [Fact]
    public void Each_method_gets_its_own_default_base_dropout_and_a_spec_or_method_setting_replaces_it()
    {
        var defaults = Plan(WithMethods("methods: [finetune, prefix, lora]"));
        Assert.All(defaults.Cells.Where(c => c.Method == "prefix"), c => Assert.Equal("eval", c.Training.BaseDropout));
        Assert.All(defaults.Cells.Where(c => c.Method != "prefix"), c => Assert.Equal("0.1", c.Training.BaseDropout));
        Assert.Contains("\"base_dropout\":\"eval\"", defaults.Cells.First(c => c.Method == "prefix").ToCanonicalJson(), StringComparison.Ordinal);

        var sweepWide = Plan(WithMethods("methods: [finetune, prefix]", "\ntraining:\n  base_dropout: 0.25\n"));
        Assert.All(sweepWide.Cells, c => Assert.Equal("0.25", c.Training.BaseDropout));

        var perMethod = Plan(WithMethods("methods: [finetune, {name: prefix, training: {base_dropout: 0.1}}, {name: lora, training: {base_dropout: eval}}]"));
        Assert.All(perMethod.Cells.Where(c => c.Method == "prefix"), c => Assert.Equal("0.1", c.Training.BaseDropout));
        Assert.All(perMethod.Cells.Where(c => c.Method == "lora"), c => Assert.Equal("eval", c.Training.BaseDropout));
        Assert.All(perMethod.Cells.Where(c => c.Method == "finetune"), c => Assert.Equal("0.1", c.Training.BaseDropout));

        // A rate of 0 is the same work as eval: one key.
        var zero = Plan(WithMethods("methods: [finetune]", "\ntraining:\n  base_dropout: 0\n"));
        var eval = Plan(WithMethods("methods: [finetune]", "\ntraining:\n  base_dropout: eval\n"));
        Assert.Equal(eval.Cells.Select(c => c.Key), zero.Cells.Select(c => c.Key));
        Assert.NotEqual(eval.Cells[0].Key, defaults.Cells.First(c => c.Method == "finetune").Key);
    }

    [Fact]
    public void The_token_mean_loss_stays_out_of_the_key_and_sequence_sum_changes_it()
    {
        var plain = Plan(TestVocabulary.MinimalSpec);
        var mean = Plan(TestVocabulary.MinimalSpec + "\ntraining:\n  loss: token_mean\n");
        var sum = Plan(TestVocabulary.MinimalSpec + "\ntraining:\n  loss: sequence_sum\n");
        Assert.Equal(plain.Cells.Select(c => c.Key), mean.Cells.Select(c => c.Key));
        Assert.DoesNotContain("\"loss\"", plain.Cells[0].ToCanonicalJson(), StringComparison.Ordinal);
        Assert.Contains("\"loss\":\"sequence_sum\"", sum.Cells[0].ToCanonicalJson(), StringComparison.Ordinal);
        Assert.Empty(plain.Cells.Select(c => c.Key).Intersect(sum.Cells.Select(c => c.Key)));
        Assert.All(sum.Cells, c => Assert.Equal("sequence_sum", c.Training.LossOrDefault));
    }

    [Fact]
    public void Decoding_settings_at_their_former_behaviour_keep_the_keys_and_the_paper_scoring_changes_them()
    {
        var plain = Plan(TestVocabulary.MinimalSpec);
        var explicitDefaults = Plan(TestVocabulary.MinimalSpec + "\ndecoding:\n  strategy: greedy\n");
        Assert.Equal(plain.Cells.Select(c => c.Key), explicitDefaults.Cells.Select(c => c.Key));
        Assert.DoesNotContain("length_", plain.Cells[0].ToCanonicalJson(), StringComparison.Ordinal);
        Assert.DoesNotContain("min_length", plain.Cells[0].ToCanonicalJson(), StringComparison.Ordinal);

        var minLength = Plan(TestVocabulary.MinimalSpec + "\ndecoding:\n  min_length: 5\n");
        Assert.Equal(5, minLength.Cells[0].Decoding.MinLength);
        Assert.NotEqual(plain.Cells[0].Key, minLength.Cells[0].Key);
    }

    [Fact]
    public void A_beam_spec_records_length_penalty_and_normalisation_only_when_they_differ_from_the_former_scoring()
    {
        var spec = new DecodingSpec("beam", 5, 100, 5);
        Assert.Equal(new DecodingSettings("beam", 5, 100, 5), CellExpander.Decoding(spec));
        var paper = CellExpander.Decoding(spec with { LengthPenalty = 0.8, LengthNormalization = DecodingSpec.NormalizeFullSequence, MinLength = 5 });
        Assert.Equal(new DecodingSettings("beam", 5, 100, 5, 0.8, "full_sequence", 5), paper);
    }

    [Theory]
    [InlineData("training:\n  base_dropout: 1.5\n", "training.base_dropout", "'eval' (no dropout in the base) or a rate in [0, 1)")]
    [InlineData("training:\n  base_dropout: none\n", "training.base_dropout", "got 'none'")]
    [InlineData("training:\n  loss: sequence_mean\n", "training.loss", "unknown loss 'sequence_mean' (did you mean 'sequence_sum'?)")]
    [InlineData("decoding:\n  length_normalization: full\n", "decoding.length_normalization", "unknown length normalisation 'full'")]
    [InlineData("decoding:\n  length_penalty: 0.8\n", "decoding.length_penalty", "strategy 'greedy' has none")]
    [InlineData("decoding:\n  min_length: -1\n", "decoding.min_length", "must be between 0 and")]
    public void Bad_protocol_settings_are_refused_with_their_path(string yaml, string path, string message)
    {
        var e = Assert.Throws<SpecValidationException>(() => Plan(TestVocabulary.MinimalSpec + "\n" + yaml));
        Assert.Contains(e.Errors, x => x.Path == path && x.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void A_method_override_of_the_loss_or_base_dropout_blocks_extending_the_sweep()
    {
        var before = SpecParser.Parse(TestVocabulary.MinimalSpec, TestVocabulary.Value);
        var after = SpecParser.Parse(TestVocabulary.MinimalSpec + "\ntraining:\n  loss: sequence_sum\n  base_dropout: eval\n", TestVocabulary.Value);
        var reason = SpecCompatibility.Explain(before, after);
        Assert.NotNull(reason);
        Assert.Contains("training.base_dropout changed", reason, StringComparison.Ordinal);
        Assert.Contains("training.loss changed", reason, StringComparison.Ordinal);
    }
}
