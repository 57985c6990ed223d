using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Tests;

public sealed class SpecCompatibilityTests
{
    private static SweepSpec Parse(string yaml) => SpecParser.Parse(yaml, TestVocabulary.Value);

    [Fact]
    public void Adding_seeds_sizes_subsamples_and_methods_is_compatible()
    {
        var wider = TestVocabulary.MinimalSpec
            .Replace("seeds: [0, 1]", "seeds: [0, 1, 2]")
            .Replace("sizes: [50, 100]", "sizes: [50, 100, 200]")
            .Replace("subsamples: 2", "subsamples: 5")
            .Replace("methods: [finetune]", "methods: [finetune, lora]");
        Assert.Null(SpecCompatibility.Explain(Parse(TestVocabulary.MinimalSpec), Parse(wider)));
    }

    [Theory]
    [InlineData("\ntraining:\n  learning_rate: 1e-3\n", "training.learning_rate changed")]
    [InlineData("\ndecoding:\n  max_new_tokens: 7\n", "decoding changed")]
    [InlineData("|seeds: [0, 1]|seeds: [1]", "removed seed 0")]
    [InlineData("|sizes: [50, 100]|sizes: [100]", "removed size 50")]
    [InlineData("|methods: [finetune]|methods: [lora]", "removed method finetune")]
    [InlineData("|preset: tiny|preset: test", "model changed")]
    [InlineData("|methods: [finetune]|methods: [{name: finetune, training: {learning_rate: 0.1}}]", "methods[0] (finetune) training.learning_rate changed")]
    public void Changing_or_removing_existing_cells_is_refused_with_the_reason(string change, string reason)
    {
        var updated = change.StartsWith('|')
            ? TestVocabulary.MinimalSpec.Replace(change.Split('|')[1], change.Split('|')[2])
            : TestVocabulary.MinimalSpec + change;
        var message = SpecCompatibility.Explain(Parse(TestVocabulary.MinimalSpec), Parse(updated));
        Assert.NotNull(message);
        Assert.Contains(reason, message);
    }
}
