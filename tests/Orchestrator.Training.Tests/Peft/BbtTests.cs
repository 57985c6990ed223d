using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.Bbt;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>Black-box tuning: CMA-ES on a prompt through the trainer's gradient-free loop.</summary>
[Collection(PeftCollection.Name)]
public sealed class BbtTests(PeftTaskFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void Bbt_lowers_the_training_loss_without_any_gradient_and_ends_at_its_budget()
    {
        using var model = fixture.NewBase();
        using var method = (BbtMethod)PeftRegistry.Create("bbt", new Dictionary<string, string>
        {
            ["length"] = "1", ["dim"] = "16", ["popsize"] = "6", ["budget"] = "150",
        });
        var trainer = new CausalLmTrainer(model, fixture.Tokenizer, method);
        method.Prepare(model, new PeftContext(2, fixture.Tokenizer));
        double initial = trainer.EvaluateLoss(fixture.Task); // with the initial prompt p0
        var report = trainer.Train(fixture.Task, fixture.Task.Take(4).ToList(), new TrainingOptions(MaxSteps: 100, BatchSize: 12, LearningRate: 1, WarmupSteps: 0, EvalEvery: 10, Seed: 2));
        double after = trainer.EvaluateLoss(fixture.Task);
        output.WriteLine($"loss {initial:F3} -> {after:F3}; {report.Steps} generations, {method.Optimizer!.Evaluations} evaluations, sigma {method.Optimizer.Sigma:E2}");

        Assert.True(after < 0.5 * initial, $"loss {initial} -> {after}");
        Assert.Equal(25, report.Steps);                  // budget 150 / λ 6: the run ends after 25 generations
        Assert.Equal(25, report.StepLosses.Count);
        Assert.Equal(25, report.DevLosses[^1].Step);     // the early end counts as the last step (dev evaluated)
        Assert.Equal(150, method.Optimizer.Evaluations);
        Assert.All(model.parameters(), p => Assert.False(p.requires_grad || p.grad is not null));
        var z = Assert.Single(method.Prepare(model, PeftContext.Default));
        Assert.False(z.requires_grad);
        Assert.Null(z.grad);
    }

    [Fact]
    public void The_initial_prompt_is_p0_and_the_projection_has_the_reference_scale()
    {
        using var model = fixture.NewBase();
        using var method = (BbtMethod)PeftRegistry.Create("bbt", new Dictionary<string, string>
        {
            ["length"] = "3", ["dim"] = "200", ["sigma"] = "0.5", ["init"] = "text", ["init_text"] = "rev",
        });
        method.Prepare(model, new PeftContext(1, fixture.Tokenizer));
        using var scope = NewDisposeScope();
        long rev = fixture.Tokenizer.Encode(" rev").Single();
        var prompt = method.StoredTensors().Single().Value;
        Assert.True(TestData.Identical(prompt, model.TokenEmbeddings[rev].unsqueeze(0).expand(3, -1)), "z = 0 must give p0");

        double embeddingStd = model.TokenEmbeddings.std(unbiased: false).item<float>();
        double expected = embeddingStd / (Math.Sqrt(200) * 0.5);
        double actual = method.Projection!.std().item<float>();
        output.WriteLine($"projection std {actual:E4}, expected {expected:E4}");
        Assert.Equal(expected, actual, expected * 0.03);
        Assert.Equal(0, method.Projection.mean().item<float>(), expected * 0.03);
    }
}
