using Orchestrator.Training.Models;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tests.Peft;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Packing;

/// <summary>
/// Packed training must give every trial what it gets alone: the same loss at every step, the same dev losses and best step,
/// and the same final weights, to <see cref="Tolerance"/> (float rounding: rows are padded further and matmuls are larger).
/// Each pack mixes trials with different data sizes, batch sizes, seeds, step counts and learning rates, and with capacity 2
/// the third trial joins when the first one leaves.
/// </summary>
public sealed class PackedTrainerTests
{
    private const double Tolerance = 1e-4;
    private static readonly Orchestrator.Training.Tokenization.WordLevelTokenizer Tokenizer = TestData.SymbolTokenizer();

    private sealed record Trial(string Id, List<TrainingExample> Train, List<TrainingExample> Dev, TrainingOptions Options);

    private static Trial[] Trials(string method)
    {
        double lr = PeftTaskFixture.LearningRate(method);
        return
        [
            new("a", TestData.CopyTask(12, 3, seed: 1), TestData.CopyTask(5, 3, seed: 11), new TrainingOptions(8, 4, lr, 2, 3, Seed: 0)),
            new("b", TestData.CopyTask(20, 4, seed: 2, reverse: true), TestData.CopyTask(4, 4, seed: 12), new TrainingOptions(5, 3, lr * 0.5, 1, 2, Seed: 1) { Loss = TrainingLoss.SequenceSum }),
            new("c", TestData.CopyTask(7, 2, seed: 3), TestData.CopyTask(3, 2, seed: 13), new TrainingOptions(10, 5, lr, 0, 4, Seed: 2)),
        ];
    }

    private static IReadOnlyDictionary<string, string> Options(string method) => method switch
    {
        "prefix" => new Dictionary<string, string> { ["length"] = "3", ["hidden"] = "32" },
        "prompt" or "ptuning-v2" => new Dictionary<string, string> { ["length"] = "3" },
        "lora" => new Dictionary<string, string> { ["dropout"] = "0.1", ["targets"] = "q,v" },
        _ => new Dictionary<string, string>(),
    };

    private static Gpt2Model Base() => new(Gpt2Config.Preset("tiny", Tokenizer.VocabSize), seed: 3);

    [Theory]
    [InlineData("prefix", 2)]
    [InlineData("prefix", 3)]
    [InlineData("prompt", 2)]
    [InlineData("ptuning-v2", 2)]
    [InlineData("lora", 2)]
    [InlineData("lora", 3)]
    [InlineData("ia3", 2)]
    public void A_trial_trained_in_a_pack_matches_the_same_trial_trained_alone(string name, int capacity)
    {
        var trials = Trials(name);
        var alone = new Dictionary<string, (TrainReport Report, Dictionary<string, float[]> Weights)>();
        foreach (var trial in trials)
        {
            using var model = Base();
            using var method = PeftRegistry.Create(name, Options(name));
            var report = new CausalLmTrainer(model, Tokenizer, method).Train(trial.Train, trial.Dev, trial.Options);
            alone[trial.Id] = (report, Weights(method));
        }

        using var shared = Base();
        var methods = trials.ToDictionary(t => t.Id, _ => PeftRegistry.Create(name, Options(name)));
        try
        {
            var queue = new Queue<PackMember>(trials.Select(t => new PackMember(t.Id, methods[t.Id], t.Train, t.Dev, t.Options)));
            var done = new List<PackMember>();
            var weights = new Dictionary<string, Dictionary<string, float[]>>();
            int steps = new PackedTrainer(shared, Tokenizer).Run(capacity, () => queue.Count > 0 ? queue.Dequeue() : null, m =>
            {
                done.Add(m);
                weights[m.Id] = Weights(m.Method);
            });

            Assert.Equal(3, done.Count);
            Assert.All(done, m => Assert.Null(m.Error));
            // Capacity 2: b (5 steps) leaves first and c joins; the pack runs fewer steps than the trials' sum (23).
            Assert.True(steps < 23, $"{steps} pack steps");
            if (capacity == 2)
            {
                Assert.Equal(["a", "b", "c"], done.First(m => m.Id == "a").PackedWith.Append("a").Order());
                Assert.DoesNotContain("c", done.First(m => m.Id == "b").PackedWith);
            }

            foreach (var m in done)
            {
                var (expected, expectedWeights) = alone[m.Id];
                var actual = m.Report!;
                Assert.Equal(expected.StepLosses.Count, actual.StepLosses.Count);
                for (int i = 0; i < expected.StepLosses.Count; i++)
                {
                    Assert.True(Math.Abs(expected.StepLosses[i] - actual.StepLosses[i]) <= Tolerance,
                        $"{name} trial {m.Id} step {i + 1}: alone {expected.StepLosses[i]}, packed {actual.StepLosses[i]}");
                }

                Assert.Equal(expected.DevLosses.Select(d => d.Step), actual.DevLosses.Select(d => d.Step));
                Assert.All(expected.DevLosses.Zip(actual.DevLosses), p => Assert.True(Math.Abs(p.First.Loss - p.Second.Loss) <= Tolerance));
                Assert.Equal(expected.BestStep, actual.BestStep);
                Assert.Equal(expected.Tokens, actual.Tokens);
                foreach (var (tensorName, values) in expectedWeights)
                {
                    var got = weights[m.Id][tensorName];
                    double diff = values.Zip(got, (x, y) => Math.Abs(x - y)).Max();
                    Assert.True(diff <= Tolerance, $"{name} trial {m.Id} {tensorName}: max |alone − packed| = {diff}");
                }
            }
        }
        finally
        {
            foreach (var m in methods.Values) m.Dispose();
        }
    }

    /// <summary>
    /// With a pad length fixed by the trial's definition (as <see cref="TrialRunner"/> sets it), a trial's rows have the same
    /// shape whoever its partners are, so it gets the same bits in a pack of one, in a pack of three and in a pack of two it
    /// joins late: every step loss, dev loss and weight. Without it the pack's padding (the partners' longest rows) changes the
    /// attention's rounding.
    /// </summary>
    [Theory]
    [InlineData("prefix")]
    [InlineData("prompt")]
    [InlineData("ptuning-v2")]
    [InlineData("lora")]
    [InlineData("ia3")]
    public void With_a_fixed_pad_length_a_trial_gets_the_same_bits_alone_and_in_any_pack(string name)
    {
        var trials = Trials(name);
        int pad = trials.SelectMany(t => t.Train).Max(e => CausalLmFormat.Encode(Tokenizer, e.Source, e.Target, 1000).InputIds.Length) + 2;

        Dictionary<string, double[]> Train(int capacity, params Trial[] pack)
        {
            using var shared = Base();
            var methods = pack.ToDictionary(t => t.Id, _ => PeftRegistry.Create(name, Options(name)));
            var numbers = new Dictionary<string, double[]>();
            try
            {
                var queue = new Queue<PackMember>(pack.Select(t => new PackMember(t.Id, methods[t.Id], t.Train, t.Dev, t.Options) { PadLength = pad }));
                new PackedTrainer(shared, Tokenizer).Run(capacity, () => queue.Count > 0 ? queue.Dequeue() : null, m =>
                {
                    Assert.Null(m.Error);
                    numbers[m.Id] = m.Report!.StepLosses.Concat(m.Report.DevLosses.Select(d => d.Loss))
                        .Concat(Weights(m.Method).OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value.Select(v => (double)v)))
                        .ToArray();
                });
                return numbers;
            }
            finally
            {
                foreach (var m in methods.Values) m.Dispose();
            }
        }

        var together = Train(3, trials);
        var lateJoin = Train(2, trials[1], trials[0], trials[2]);
        foreach (var trial in trials)
        {
            var alone = Train(1, trial)[trial.Id];
            Assert.Equal(alone, together[trial.Id]);
            Assert.Equal(alone, lateJoin[trial.Id]);
        }
    }

    /// <summary>
    /// Trials of the virtual-token methods on a random Llama with grouped-query attention (llama-tiny: 4 query heads sharing 2
    /// key/value heads, SwiGLU MLP of width 172, RMSNorm, rotary positions), on one torch thread as every cell trains
    /// (<see cref="TorchRuntime.PinCurrentThread"/>): each trial gets the same bits alone (a pack of one), in a pack of three and
    /// in packs of two with different partners: every step loss, dev loss, weight and greedy output. The sequences are long
    /// enough that a pack's MLP tensors exceed torch's parallel grain: on two threads the same packs differ in the last bits
    /// (the split of an elementwise kernel between threads follows the batch's size).
    /// </summary>
    [Theory]
    [InlineData("prefix")]
    [InlineData("prompt")]
    [InlineData("ptuning-v2")]
    public void Virtual_token_trials_on_a_grouped_query_llama_get_the_same_bits_alone_and_in_packs_of_two_and_three(string name)
    {
        int before = get_num_threads();
        TorchRuntime.PinCurrentThread(1);
        try
        {
            double lr = PeftTaskFixture.LearningRate(name);
            Trial[] trials =
            [
                new("a", TestData.CopyTask(12, 10, seed: 1), TestData.CopyTask(4, 10, seed: 11), new TrainingOptions(6, 4, lr, 2, 3, Seed: 0)),
                new("b", TestData.CopyTask(15, 12, seed: 2, reverse: true), TestData.CopyTask(3, 12, seed: 12), new TrainingOptions(4, 5, lr * 0.5, 1, 2, Seed: 1) { Loss = TrainingLoss.SequenceSum }),
                new("c", TestData.CopyTask(9, 11, seed: 3), TestData.CopyTask(3, 11, seed: 13), new TrainingOptions(7, 3, lr, 0, 7, Seed: 2)),
            ];
            int pad = trials.SelectMany(t => t.Train).Max(e => CausalLmFormat.Encode(Tokenizer, e.Source, e.Target, 1000).InputIds.Length) + 1;
            var options = new Dictionary<string, string> { ["length"] = "3" };
            if (name == "prefix") options["hidden"] = "32";
            var decoding = new Orchestrator.Training.Decoding.DecodingOptions { MaxNewTokens = 6, MinNewTokens = 1 };

            Dictionary<string, (double[] Numbers, string[] Outputs)> Train(int capacity, params Trial[] pack)
            {
                using var shared = new LlamaModel(LlamaConfig.Preset("llama-tiny", Tokenizer.VocabSize), seed: 3);
                Assert.True(shared.Config.KeyValueHeads < shared.Config.Heads);
                var methods = pack.ToDictionary(t => t.Id, _ => PeftRegistry.Create(name, options));
                var results = new Dictionary<string, (double[], string[])>();
                try
                {
                    var queue = new Queue<PackMember>(pack.Select(t => new PackMember(t.Id, methods[t.Id], t.Train, t.Dev, t.Options) { PadLength = pad }));
                    new PackedTrainer(shared, Tokenizer).Run(capacity, () => queue.Count > 0 ? queue.Dequeue() : null, m =>
                    {
                        Assert.Null(m.Error);
                        double[] numbers = m.Report!.StepLosses.Concat(m.Report.DevLosses.Select(d => d.Loss))
                            .Concat(Weights(m.Method).OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value.Select(v => (double)v)))
                            .ToArray();
                        var sources = pack.Single(t => t.Id == m.Id).Dev.Select(e => e.Source).ToArray();
                        results[m.Id] = (numbers, Orchestrator.Training.Decoding.GreedyDecoder.Decode(shared, Tokenizer, sources, decoding, m.Method).ToArray());
                    });
                    return results;
                }
                finally
                {
                    foreach (var m in methods.Values) m.Dispose();
                }
            }

            var three = Train(3, trials);
            var pairs = new[] { Train(2, trials[0], trials[1]), Train(2, trials[1], trials[2]), Train(2, trials[2], trials[0]) };
            var lateJoin = Train(2, trials[1], trials[0], trials[2]); // c joins when b leaves
            foreach (var trial in trials)
            {
                var (numbers, outputs) = Train(1, trial)[trial.Id];
                foreach (var packed in pairs.Where(p => p.ContainsKey(trial.Id)).Append(three).Append(lateJoin))
                {
                    Assert.Equal(numbers, packed[trial.Id].Numbers);
                    Assert.Equal(outputs, packed[trial.Id].Outputs);
                }
            }
        }
        finally
        {
            TorchRuntime.PinCurrentThread(before);
        }
    }

    [Fact]
    public void Members_with_different_pad_lengths_are_not_packed_together()
    {
        var trial = Trials("lora")[0];
        using var shared = Base();
        using var first = PeftRegistry.Create("lora", Options("lora"));
        using var other = PeftRegistry.Create("lora", Options("lora"));
        using var tooShort = PeftRegistry.Create("lora", Options("lora"));
        var members = new Queue<PackMember>(
        [
            new PackMember("first", first, trial.Train, trial.Dev, trial.Options) { PadLength = 40 },
            new PackMember("other", other, trial.Train, trial.Dev, trial.Options) { PadLength = 41 },
            new PackMember("short", tooShort, trial.Train, trial.Dev, trial.Options) { PadLength = 2 },
        ]);
        var done = new Dictionary<string, PackMember>();
        new PackedTrainer(shared, Tokenizer).Run(3, () => members.Count > 0 ? members.Dequeue() : null, m => done[m.Id] = m);
        Assert.Null(done["first"].Error);
        Assert.Contains("pads its batches to 41; the pack's trials to 40", done["other"].Error!.Message, StringComparison.Ordinal);
        Assert.Contains("longer than its pad length 2", done["short"].Error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_diverging_or_unpackable_trial_leaves_the_pack_and_the_others_are_unaffected()
    {
        var trial = Trials("lora")[0];
        using var aloneModel = Base();
        using var aloneMethod = PeftRegistry.Create("lora", Options("lora"));
        var expected = new CausalLmTrainer(aloneModel, Tokenizer, aloneMethod).Train(trial.Train, trial.Dev, trial.Options);

        using var shared = Base();
        using var good = PeftRegistry.Create("lora", Options("lora"));
        using var wild = PeftRegistry.Create("lora", Options("lora"));
        using var full = PeftRegistry.Create("finetune", new Dictionary<string, string>());
        using var fromCell = PeftRegistry.Create("prompt", new Dictionary<string, string> { ["length"] = "3", ["init"] = "from-cell" });
        var members = new Queue<PackMember>(
        [
            new PackMember("good", good, trial.Train, trial.Dev, trial.Options),
            new PackMember("wild", wild, trial.Train, trial.Dev, trial.Options with { LearningRate = 1e30, MaxGradNorm = 0, WarmupSteps = 0 }),
            new PackMember("full", full, trial.Train, trial.Dev, trial.Options),
            new PackMember("from-cell", fromCell, trial.Train, trial.Dev, trial.Options),
        ]);
        var done = new Dictionary<string, PackMember>();
        new PackedTrainer(shared, Tokenizer).Run(3, () => members.Count > 0 ? members.Dequeue() : null, m => done[m.Id] = m);

        Assert.IsType<TrainingDivergedException>(done["wild"].Error);
        var notPackable = Assert.IsType<ArgumentException>(done["full"].Error);
        Assert.Contains("cannot be packed", notPackable.Message, StringComparison.Ordinal);
        // A packable method whose options need dependencies (which a pack does not pass) is refused too.
        Assert.Contains("cannot be packed with these options", Assert.IsType<ArgumentException>(done["from-cell"].Error).Message, StringComparison.Ordinal);
        Assert.Null(done["good"].Error);
        Assert.Equal(expected.StepLosses.Count, done["good"].Report!.StepLosses.Count);
        Assert.All(expected.StepLosses.Zip(done["good"].Report!.StepLosses), p => Assert.True(Math.Abs(p.First - p.Second) <= Tolerance));
    }

    [Fact]
    public void A_cancelled_trial_leaves_and_a_trial_that_keeps_its_bases_dropout_is_refused()
    {
        var trial = Trials("prompt")[0];
        using var shared = Base();
        using var kept = PeftRegistry.Create("prompt", Options("prompt"));
        using var stopped = PeftRegistry.Create("prompt", Options("prompt"));
        using var cts = new CancellationTokenSource();
        var members = new Queue<PackMember>(
        [
            new PackMember("kept", kept, trial.Train, trial.Dev, trial.Options),
            new PackMember("stopped", stopped, trial.Train, trial.Dev, trial.Options,
                new Progress(p => { if (p.Step == 2) cts.Cancel(); }), cts.Token),
        ]);
        var done = new Dictionary<string, PackMember>();
        new PackedTrainer(shared, Tokenizer).Run(2, () => members.Count > 0 ? members.Dequeue() : null, m => done[m.Id] = m);
        Assert.IsAssignableFrom<OperationCanceledException>(done["stopped"].Error);
        Assert.Equal(trial.Options.MaxSteps, done["kept"].Report!.StepLosses.Count);

        // A base with dropout: a trial that keeps it is refused; one with base_dropout eval (0) trains, without dropout.
        using var dropping = new Gpt2Model(Gpt2Config.Preset("tiny", Tokenizer.VocabSize) with { Dropout = 0.1 }, seed: 3);
        using var keeps = PeftRegistry.Create("lora", Options("lora"));
        using var evalMode = PeftRegistry.Create("lora", Options("lora"));
        var onDropping = new Queue<PackMember>(
        [
            new PackMember("keeps", keeps, trial.Train, trial.Dev, trial.Options),
            new PackMember("eval", evalMode, trial.Train, trial.Dev, trial.Options with { BaseDropout = 0 }),
        ]);
        var outcome = new Dictionary<string, PackMember>();
        new PackedTrainer(dropping, Tokenizer).Run(2, () => onDropping.Count > 0 ? onDropping.Dequeue() : null, m => outcome[m.Id] = m);
        Assert.Contains("without dropout", Assert.IsType<ArgumentException>(outcome["keeps"].Error).Message, StringComparison.Ordinal);
        Assert.Null(outcome["eval"].Error);
        Assert.Equal(trial.Options.MaxSteps, outcome["eval"].Report!.StepLosses.Count);
        Assert.Equal(0.1, dropping.Dropout);
    }

    private static Dictionary<string, float[]> Weights(IPeftMethod method) =>
        method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().data<float>().ToArray());

    /// <summary>Synchronous progress (System.Progress posts to the thread pool).</summary>
    private sealed class Progress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
