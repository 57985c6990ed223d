using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Tests;

internal static class TestVocabulary
{
    public static SpecVocabulary Value { get; } = new(
        ["finetune", "prefix", "lora"], ["synthetic-e2e", "e2e"], ["bleu", "rouge"], ["greedy"], ["tiny", "test", "gpt2"],
        new Dictionary<string, string> { ["null-prompt"] = "classification only: a masked LM's [MASK] prediction" })
    {
        BaseDropoutDefaults = new Dictionary<string, string> { ["prefix"] = "eval" },
    };

    public const string MinimalSpec = """
        name: t
        dataset:
          kind: synthetic-e2e
        model:
          preset: tiny
        methods: [finetune]
        grid:
          sizes: [50, 100]
          subsamples: 2
          seeds: [0, 1]
        """;
}
