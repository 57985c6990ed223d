using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.PromptTuning;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>Prompt tuning with <c>init: from-cell</c> (pre-trained prompts, PPT): the prompt starts as the dependency's.</summary>
[Collection(PeftCollection.Name)]
public sealed class PromptFromCellTests(PeftTaskFixture fixture, ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"peft-ppt-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static Dictionary<string, string> FromCell(int length) => new() { ["length"] = length.ToString(System.Globalization.CultureInfo.InvariantCulture), ["init"] = "from-cell" };

    /// <summary>A saved method as an earlier-stage cell would leave it (prepared with a random init, not trained: any values do).</summary>
    private PeftDependency Saved(string cell, string method, Dictionary<string, string> options)
    {
        using var model = fixture.NewBase();
        using var m = PeftRegistry.Create(method, options);
        m.Prepare(model, new PeftContext(7, fixture.Tokenizer));
        string directory = Path.Combine(_dir, cell);
        PeftCheckpoint.Save(m, directory);
        return new PeftDependency(cell, directory);
    }

    private static Tensor StoredPrompt(PeftDependency dependency) =>
        SafeTensors.Load(Path.Combine(dependency.Directory, PeftCheckpoint.WeightsFile))[PromptTuningMethod.StoredName];

    [Fact]
    public void The_prompt_starts_as_the_dependency_prompt_exactly_and_then_trains()
    {
        var dependency = Saved("stage-1", "prompt", new() { ["length"] = "3", ["init"] = "normal" });
        using var expected = StoredPrompt(dependency);
        using var model = fixture.NewBase();
        using var method = PeftRegistry.Create("prompt", FromCell(3));
        Assert.False(((IPackableMethod)method).Packable);
        var trainer = new CausalLmTrainer(model, fixture.Tokenizer, method) { Dependencies = [dependency] };
        var trainable = method.Prepare(model, new PeftContext(2, fixture.Tokenizer) { Dependencies = [dependency] });
        var prompt = Assert.Single(trainable);
        Assert.True(prompt.requires_grad);
        Assert.True(TestData.Identical(expected, prompt), "the prompt is not the dependency's");

        var report = trainer.Train(fixture.Task, [], new TrainingOptions(MaxSteps: 10, BatchSize: 6, LearningRate: 5e-2, WarmupSteps: 0, EvalEvery: 0, Seed: 3));
        output.WriteLine($"losses {report.StepLosses[0]:F4} -> {report.StepLosses[^1]:F4}");
        Assert.False(TestData.Identical(expected, prompt), "the prompt did not train");
        Assert.True(report.StepLosses[^1] < report.StepLosses[0]);
    }

    [Fact]
    public void Other_inits_ignore_dependencies_and_stay_packable()
    {
        var dependency = Saved("stage-1", "prompt", new() { ["length"] = "2", ["init"] = "normal" });
        var options = new Dictionary<string, string> { ["length"] = "2", ["init"] = "normal" };
        using var a = fixture.NewBase();
        using var b = fixture.NewBase();
        using var with = PeftRegistry.Create("prompt", options);
        using var without = PeftRegistry.Create("prompt", options);
        Assert.True(((IPackableMethod)with).Packable);
        var p = Assert.Single(with.Prepare(a, new PeftContext(4, fixture.Tokenizer) { Dependencies = [dependency, dependency] }));
        var q = Assert.Single(without.Prepare(b, new PeftContext(4, fixture.Tokenizer)));
        Assert.True(TestData.Identical(p, q));
    }

    private T Refused<T>(int length, IReadOnlyList<PeftDependency> dependencies) where T : Exception
    {
        using var model = fixture.NewBase();
        using var method = PeftRegistry.Create("prompt", FromCell(length));
        var e = Assert.Throws<T>(() => method.Prepare(model, new PeftContext(1, fixture.Tokenizer) { Dependencies = dependencies }));
        output.WriteLine(e.Message);
        return e;
    }

    [Fact]
    public void Dependencies_that_do_not_fit_are_refused_with_the_reason()
    {
        var prompt = Saved("stage-1", "prompt", new() { ["length"] = "3", ["init"] = "normal" });
        var adapter = Saved("an-adapter", "adapter", new() { ["bottleneck"] = "4" });
        Assert.Contains("prompt (init=from-cell) needs exactly one dependency, the cell whose trained prompt it starts from; none was given",
            Refused<InvalidOperationException>(3, []).Message);
        Assert.Contains("2 were given (stage-1, stage-1)", Refused<InvalidOperationException>(3, [prompt, prompt]).Message);
        Assert.Contains("dependency 'an-adapter' (", Refused<ArgumentException>(3, [adapter]).Message);
        Assert.Contains("was trained with method 'adapter', but a prompt can only start from a trained prompt (method 'prompt')",
            Refused<ArgumentException>(3, [adapter]).Message);
        Assert.Contains("has a prompt of length 3, this cell's length is 2 (set length: 3)", Refused<ArgumentException>(2, [prompt]).Message);
    }
}
