using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// The paper's training conventions: the base's dropout while training (<see cref="TrainingOptions.BaseDropout"/>) and the
/// loss normalisation (<see cref="TrainingLoss"/>), checked against computations written here from the definitions.
/// </summary>
public sealed class TrainingProtocolTests
{
    private static readonly Orchestrator.Training.Tokenization.WordLevelTokenizer Tokenizer = TestData.SymbolTokenizer();

    // Targets of different lengths, so that the two normalisations differ and padding is exercised.
    private static readonly List<TrainingExample> Batch =
    [
        new("a b", "a b"),
        new("c d e", "c d e f g h"),
        new("h", "h i"),
    ];

    private static Gpt2Config Config(double dropout) => Gpt2Config.Preset("tiny", Tokenizer.VocabSize) with { Dropout = dropout };

    /// <summary>
    /// Σ over the target tokens of each example, computed one example at a time (no batch, no padding) from the model's
    /// eval-mode logits with a log-softmax in double precision; returns (sum per example, target tokens per example).
    /// </summary>
    private static (double[] Sums, int[] Counts) HandLosses(Gpt2Model model)
    {
        var sums = new double[Batch.Count];
        var counts = new int[Batch.Count];
        model.eval();
        using var noGrad = no_grad();
        for (int e = 0; e < Batch.Count; e++)
        {
            var encoded = CausalLmFormat.Encode(Tokenizer, Batch[e].Source, Batch[e].Target, model.Config.Positions);
            using var ids = tensor(encoded.InputIds.Select(i => (long)i).ToArray(), [1, encoded.InputIds.Length], ScalarType.Int64);
            using var logits = model.forward(ids);
            float[] values = logits.cpu().data<float>().ToArray();
            long vocab = logits.shape[2];
            for (int t = 1; t < encoded.Labels.Length; t++)
            {
                int label = encoded.Labels[t];
                if (label == CausalLmFormat.IgnoreIndex) continue;
                var row = values.AsSpan((int)((t - 1) * vocab), (int)vocab);
                double max = double.NegativeInfinity;
                foreach (float v in row) max = Math.Max(max, v);
                double z = 0;
                foreach (float v in row) z += Math.Exp(v - max);
                sums[e] += -(row[label] - max - Math.Log(z));
                counts[e]++;
            }
        }

        return (sums, counts);
    }

    private static TrainReport TrainOneStep(Gpt2Model model, TrainingOptions options, IPeftMethod? method = null) =>
        new CausalLmTrainer(model, Tokenizer, method).Train(Batch, [], options);

    private static TrainingOptions OneStep => new(1, Batch.Count, 1e-3, 0, 0, Seed: 5);

    [Fact]
    public void Sequence_sum_is_each_sequences_summed_token_losses_averaged_over_the_batch()
    {
        using var reference = new Gpt2Model(Config(0), seed: 7);
        var (sums, counts) = HandLosses(reference);
        double sequenceSum = sums.Average();
        double tokenMean = sums.Sum() / counts.Sum();
        Assert.True(Math.Abs(sequenceSum - tokenMean) > 0.5, $"the batch must tell them apart ({sequenceSum} vs {tokenMean})");

        // The first step's loss is the loss of the whole batch before any update (batch = all three examples).
        using (var model = new Gpt2Model(Config(0), seed: 7))
        {
            var report = TrainOneStep(model, OneStep with { Loss = TrainingLoss.SequenceSum });
            Assert.Equal(sequenceSum, report.StepLosses[0], 4);
        }

        using (var model = new Gpt2Model(Config(0), seed: 7))
        {
            var report = TrainOneStep(model, OneStep);
            Assert.Equal(tokenMean, report.StepLosses[0], 4);
        }
    }

    [Fact]
    public void A_base_in_eval_mode_gives_the_same_forward_twice_and_dropout_makes_two_forwards_differ()
    {
        using var model = new Gpt2Model(Config(0.1), seed: 7);
        using var ids = tensor(new long[] { 1, 2, 3, 4, 5, 6 }, [1, 6], ScalarType.Int64);
        model.train();
        using (no_grad())
        {
            using var first = model.forward(ids);
            using var second = model.forward(ids);
            Assert.False(TestData.Identical(first, second), "dropout 0.1 in training mode draws new masks");

            model.Dropout = 0;
            using var third = model.forward(ids);
            using var fourth = model.forward(ids);
            Assert.True(TestData.Identical(third, fourth));
            model.eval();
            using var evaluated = model.forward(ids);
            Assert.True(TestData.Identical(third, evaluated), "rate 0 in training mode is the eval-mode forward");
        }
    }

    [Fact]
    public void Base_dropout_reaches_the_training_forward_and_the_checkpoint_rate_comes_back_afterwards()
    {
        using var reference = new Gpt2Model(Config(0.1), seed: 7);
        var (sums, counts) = HandLosses(reference);
        double evalLoss = sums.Sum() / counts.Sum();

        using (var model = new Gpt2Model(Config(0.1), seed: 7))
        {
            var report = TrainOneStep(model, OneStep with { BaseDropout = 0 });
            Assert.Equal(evalLoss, report.StepLosses[0], 4);
            Assert.Equal(0.1, model.Dropout);
        }

        using (var model = new Gpt2Model(Config(0.1), seed: 7))
        {
            var report = TrainOneStep(model, OneStep with { BaseDropout = 0.1 });
            Assert.True(Math.Abs(evalLoss - report.StepLosses[0]) > 1e-3, "dropout 0.1 changes the training loss");
        }

        // Null keeps the checkpoint's rate (cells stored before the setting): 0.1 here, so not the eval-mode loss either.
        using (var model = new Gpt2Model(Config(0.1), seed: 7))
        {
            var report = TrainOneStep(model, OneStep);
            Assert.True(Math.Abs(evalLoss - report.StepLosses[0]) > 1e-3);
        }

        // A base whose checkpoint has no dropout trains with 0.1 when asked.
        using (var model = new Gpt2Model(Config(0), seed: 7))
        {
            var report = TrainOneStep(model, OneStep with { BaseDropout = 0.1 });
            Assert.True(Math.Abs(evalLoss - report.StepLosses[0]) > 1e-3);
            Assert.Equal(0, model.Dropout);
        }
    }

    [Fact]
    public void A_methods_own_dropout_still_applies_when_the_base_trains_in_eval_mode()
    {
        // LoRA's dropout on its branch input is the method's, not the base's: two runs that differ only in it differ.
        var options = OneStep with { MaxSteps = 3, BaseDropout = 0 };
        double Last(string rate)
        {
            using var model = new Gpt2Model(Config(0), seed: 7);
            using var method = PeftRegistry.Create("lora", new Dictionary<string, string> { ["dropout"] = rate, ["targets"] = "q,v" });
            return TrainOneStep(model, options, method).StepLosses[^1];
        }

        Assert.NotEqual(Last("0"), Last("0.5"));
    }

    [Fact]
    public void Methods_declare_the_papers_base_dropout_defaults()
    {
        foreach (var name in new[] { "prefix", "prompt", "ptuning", "ptuning-v2", "lora", "ia3", "bbt", "llama-adapter", "head-only" })
        {
            Assert.Equal("eval", PeftRegistry.BaseDropoutDefaults[name]);
        }

        foreach (var name in new[] { "finetune", "ft-top2", "adapter", "adapter-houlsby", "adapter-parallel", "adapter-fusion", "bitfit", "ln-tuning", "child-tuning-f" })
        {
            Assert.Equal("0.1", PeftRegistry.BaseDropoutDefaults[name]);
        }
    }
}
