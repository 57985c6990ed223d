using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using TorchSharp;

namespace Orchestrator.Training.Tests;

public sealed class TrainerTests(ITestOutputHelper output)
{
    private static Gpt2Model TestModel(int vocab, long seed = 11) => new(Gpt2Config.Preset("test", vocab), seed);

    [Fact]
    public void Loss_falls_on_a_copy_task()
    {
        var tokenizer = TestData.SymbolTokenizer();
        var train = TestData.CopyTask(64, 4, seed: 1);
        var dev = TestData.CopyTask(16, 4, seed: 2);
        using var model = TestModel(tokenizer.VocabSize);
        var trainer = new CausalLmTrainer(model, tokenizer);
        double before = trainer.EvaluateLoss(dev);
        var report = trainer.Train(train, dev, new TrainingOptions(MaxSteps: 150, BatchSize: 16, LearningRate: 1e-2, WarmupSteps: 10, EvalEvery: 50, Seed: 1));
        output.WriteLine($"dev before {before:F3}; steps {string.Join(" ", report.StepLosses.Where((_, i) => i % 10 == 0).Select(l => l.ToString("F2")))}");
        output.WriteLine($"dev {string.Join(" ", report.DevLosses.Select(d => $"{d.Step}:{d.Loss:F3}"))}; {report.Seconds:F2} s, {report.TokensPerSecond:F0} tokens/s");
        Assert.Equal(150, report.Steps);
        Assert.Equal(150, report.StepLosses.Count);
        Assert.Equal([50, 100, 150], report.DevLosses.Select(d => d.Step));
        Assert.True(report.StepLosses.TakeLast(10).Average() < 0.5 * report.StepLosses.Take(10).Average());
        Assert.True(report.BestDevLoss < 0.5 * before, $"dev loss {report.BestDevLoss} vs {before} before training");
        Assert.False(model.training);
    }

    [Fact]
    public void Best_dev_step_is_restored_at_the_end()
    {
        // Dev targets contradict the training targets (copy vs reverse): dev loss first falls (format, end token), then rises.
        var tokenizer = TestData.SymbolTokenizer();
        var train = TestData.CopyTask(32, 4, seed: 3, reverse: true);
        var dev = TestData.CopyTask(16, 4, seed: 3, reverse: false).Take(16).ToList();
        using var model = TestModel(tokenizer.VocabSize);
        var trainer = new CausalLmTrainer(model, tokenizer);
        var progress = new List<TrainProgress>();
        var report = trainer.Train(
            train, dev, new TrainingOptions(200, 16, 1e-2, 0, EvalEvery: 10, Seed: 5), new SyncProgress<TrainProgress>(progress.Add));
        output.WriteLine(string.Join(" ", report.DevLosses.Select(d => $"{d.Step}:{d.Loss:F3}")));
        var (minStep, minLoss) = report.DevLosses.MinBy(d => d.Loss);
        Assert.Equal(minStep, report.BestStep);
        Assert.Equal(minLoss, report.BestDevLoss);
        Assert.True(report.BestStep < 200, "the scenario should make an earlier step the best");
        Assert.True(report.DevLosses[^1].Loss > report.BestDevLoss);
        Assert.Equal(report.BestDevLoss, trainer.EvaluateLoss(dev), 6);
        Assert.Equal(200, progress.Count);
        Assert.Equal(Enumerable.Range(1, 200), progress.Select(p => p.Step));
        Assert.Equal(report.DevLosses.Select(d => d.Loss), progress.Where(p => p.DevLoss is not null).Select(p => p.DevLoss!.Value));
    }

    [Fact]
    public void Same_seed_gives_identical_losses_and_another_seed_differs()
    {
        var tokenizer = TestData.SymbolTokenizer();
        var train = TestData.CopyTask(40, 4, seed: 4);
        var dev = TestData.CopyTask(8, 4, seed: 5);
        TrainReport Run(long seed)
        {
            using var model = TestModel(tokenizer.VocabSize, seed: 21);
            return new CausalLmTrainer(model, tokenizer).Train(train, dev, new TrainingOptions(25, 8, 5e-3, 5, 10, seed));
        }

        var a = Run(1);
        var b = Run(1);
        var c = Run(2);
        Assert.Equal(a.StepLosses, b.StepLosses);
        Assert.Equal(a.DevLosses, b.DevLosses);
        Assert.NotEqual(a.StepLosses, c.StepLosses);
    }

    [Fact]
    public void Training_and_evaluation_leak_no_tensors()
    {
        var tokenizer = TestData.SymbolTokenizer();
        var train = TestData.CopyTask(20, 4, seed: 6);
        var dev = TestData.CopyTask(6, 4, seed: 7);
        using var model = TestModel(tokenizer.VocabSize);
        var trainer = new CausalLmTrainer(model, tokenizer);
        trainer.Train(train, dev, new TrainingOptions(3, 8, 1e-3, 1, 1, 1)); // warm-up: first-use allocations

        var stats = DisposeScopeManager.Statistics;
        long liveBefore = stats.ThreadTotalLiveCount;
        long tensorsBefore = stats.TensorStatistics.ThreadTotalLiveCount;
        var report = trainer.Train(train, dev, new TrainingOptions(12, 8, 1e-3, 2, 4, 2));
        trainer.EvaluateLoss(dev);
        long liveAfter = stats.ThreadTotalLiveCount;
        long tensorsAfter = stats.TensorStatistics.ThreadTotalLiveCount;
        output.WriteLine($"live {liveBefore} -> {liveAfter}, tensors {tensorsBefore} -> {tensorsAfter}; {stats}");
        Assert.Equal(12, report.Steps);
        Assert.Equal(liveBefore, liveAfter);
        Assert.Equal(tensorsBefore, tensorsAfter);
    }

    [Fact]
    public void Exploding_learning_rate_is_reported_as_divergence_with_the_step()
    {
        var tokenizer = TestData.SymbolTokenizer();
        var train = TestData.CopyTask(16, 4, seed: 8);
        using var model = TestModel(tokenizer.VocabSize);
        var trainer = new CausalLmTrainer(model, tokenizer);
        var e = Assert.Throws<TrainingDivergedException>(() =>
            trainer.Train(train, [], new TrainingOptions(20, 8, 1e30, 0, 0, 1, MaxGradNorm: 0)));
        output.WriteLine(e.Message);
        Assert.InRange(e.Step, 2, 20);
        Assert.Contains($"step {e.Step}", e.Message);
    }

    [Fact]
    public void Cancellation_stops_training()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = TestModel(tokenizer.VocabSize);
        using var cts = new CancellationTokenSource();
        var seen = new List<int>();
        var progress = new SyncProgress<TrainProgress>(p =>
        {
            seen.Add(p.Step);
            if (p.Step == 3) cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => new CausalLmTrainer(model, tokenizer).Train(
            TestData.CopyTask(16, 4, 9), [], new TrainingOptions(50, 4, 1e-3, 0, 0, 1), progress, cts.Token));
        Assert.Equal([1, 2, 3], seen);
    }

    [Fact]
    public void Decoding_returns_the_memorised_targets_batched_or_not()
    {
        var tokenizer = TestData.SymbolTokenizer();
        // Variable source lengths exercise left padding in the batched decoder.
        var train = TestData.CopyTask(6, 3, seed: 10).Concat(TestData.CopyTask(6, 5, seed: 11)).ToList();
        using var model = TestModel(tokenizer.VocabSize);
        var report = new CausalLmTrainer(model, tokenizer).Train(train, train, new TrainingOptions(200, 12, 1e-2, 10, 50, 3));
        output.WriteLine($"train loss {report.StepLosses[^1]:F4}, dev {report.BestDevLoss:F4} at {report.BestStep}");

        var sources = train.Select(e => e.Source).ToList();
        var started = System.Diagnostics.Stopwatch.StartNew();
        var batched = GreedyDecoder.Decode(model, tokenizer, sources, maxNewTokens: 20);
        double batchedMs = started.Elapsed.TotalMilliseconds;
        started.Restart();
        var oneByOne = GreedyDecoder.Decode(model, tokenizer, sources, maxNewTokens: 20, batchSize: 1);
        double sequentialMs = started.Elapsed.TotalMilliseconds;
        output.WriteLine($"decode: batched {batchedMs / sources.Count:F1} ms/example, one by one {sequentialMs / sources.Count:F1} ms/example");
        Assert.Equal(train.Select(e => e.Target), batched);
        Assert.Equal(batched, oneByOne);
    }

    [Fact]
    public void Min_new_tokens_suppresses_the_end_token_and_max_new_tokens_caps_the_length()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = TestModel(tokenizer.VocabSize);
        var capped = GreedyDecoder.DecodeIds(model, tokenizer, ["a b", "c"], maxNewTokens: 3, minNewTokens: 0);
        Assert.All(capped, ids => Assert.InRange(ids.Count, 0, 3));
        var forced = GreedyDecoder.DecodeIds(model, tokenizer, ["a b", "c"], maxNewTokens: 4, minNewTokens: 4);
        Assert.All(forced, ids => Assert.Equal(4, ids.Count));
        Assert.All(forced, ids => Assert.DoesNotContain(tokenizer.EndOfText, ids));
    }

    /// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
