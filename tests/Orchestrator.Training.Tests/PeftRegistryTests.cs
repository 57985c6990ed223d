using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.Finetune;

namespace Orchestrator.Training.Tests;

public sealed class PeftRegistryTests
{
    [Fact]
    public void Finetune_is_registered_and_trains_every_parameter()
    {
        Assert.Contains("finetune", PeftRegistry.Names);
        IPeftMethod method = PeftRegistry.Get("FineTune");
        Assert.IsType<FinetuneMethod>(method);
        Assert.Equal("finetune", method.Name);
        using var model = new Gpt2Model(Gpt2Config.Preset("test", 12));
        foreach (var p in model.parameters()) p.requires_grad = false;
        var trainable = method.Prepare(model);
        Assert.Equal(model.parameters().Count(), trainable.Count);
        Assert.All(trainable, p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void Unknown_method_error_lists_the_known_methods()
    {
        var e = Assert.Throws<ArgumentException>(() => PeftRegistry.Get("prefix-tuning-v9"));
        Assert.Contains("Unknown PEFT method 'prefix-tuning-v9'", e.Message);
        Assert.Contains("Known methods: finetune", e.Message);
        Assert.False(PeftRegistry.TryGet("nope", out _));
    }

    [Fact]
    public void Classification_only_methods_are_listed_with_a_reason_and_refused()
    {
        Assert.Equal(["feature-extraction", "null-prompt"], PeftRegistry.NotApplicable.Keys);
        Assert.All(PeftRegistry.NotApplicable.Keys, n => Assert.DoesNotContain(n, PeftRegistry.Names));
        var problem = Assert.Single(PeftRegistry.Validate("null-prompt", null));
        Assert.StartsWith("method 'null-prompt' is not applicable to generation: classification only", problem);
        Assert.Contains("masked language model", problem);
        var e = Assert.Throws<ArgumentException>(() => PeftRegistry.Get("Feature-Extraction"));
        Assert.Contains("is not applicable to generation", e.Message);
        Assert.Contains("linear classifier", e.Message);
    }
}
