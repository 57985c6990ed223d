using Orchestrator.Training.Models;

namespace Orchestrator.Training.Tests;

public sealed class TrainerEpochTests
{
    [Theory]
    [InlineData(20, 8, 1, 3)]
    [InlineData(20, 8, 3, 9)]
    [InlineData(16, 8, 2, 4)]
    [InlineData(5, 10, 4, 4)]
    public void Epochs_replace_max_steps_with_passes_over_the_training_set(int examples, int batch, int epochs, int steps)
    {
        var options = new TrainingOptions(0, batch, 1e-3, 0, 0, 1) { Epochs = epochs };
        Assert.Equal(steps, options.StepsFor(examples));
        var tokenizer = TestData.SymbolTokenizer();
        using var model = new Gpt2Model(Gpt2Config.Preset("test", tokenizer.VocabSize), 1);
        var progress = new List<TrainProgress>();
        var report = new CausalLmTrainer(model, tokenizer).Train(
            TestData.CopyTask(examples, 3, seed: 2), TestData.CopyTask(4, 3, seed: 3), options, new Sync(progress.Add));
        Assert.Equal(steps, report.Steps);
        Assert.Equal(steps, report.StepLosses.Count);
        Assert.All(progress, p => Assert.Equal(steps, p.MaxSteps));
        Assert.Equal([steps], report.DevLosses.Select(d => d.Step));
    }

    [Fact]
    public void Options_need_steps_or_epochs()
    {
        Assert.Equal(7, new TrainingOptions(7, 4, 1e-3, 0, 0, 1).StepsFor(100));
        var e = Assert.Throws<ArgumentException>(() => new TrainingOptions(0, 4, 1e-3, 0, 0, 1).Validate());
        Assert.Contains("MaxSteps must be positive", e.Message);
        e = Assert.Throws<ArgumentException>(() => (new TrainingOptions(0, 4, 1e-3, 0, 0, 1) { Epochs = -1 }).Validate());
        Assert.Contains("Epochs must not be negative", e.Message);
        (new TrainingOptions(0, 4, 1e-3, 0, 0, 1) { Epochs = 2 }).Validate();
    }

    private sealed class Sync(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
