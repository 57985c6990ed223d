using Orchestrator.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// The base model's dropout draws from the cell's own generator: the same masks as torch's dropout after
/// torch.manual_seed(seed), and two cells training at once in one process no longer take each other's draws.
/// </summary>
public sealed class BaseDropoutTests
{
    [Fact]
    public void With_the_cells_generator_dropout_is_torchs_own_after_manual_seed_bit_for_bit()
    {
        TorchRuntime.EnsureAvailable();
        using var scope = NewDisposeScope();
        var x = randn(3, 7, 16, generator: new Generator(5));
        torch.manual_seed(42);
        var expected = nn.functional.dropout(x, 0.3, true);
        using var draws = new Generator(42);
        var dropout = new Gpt2Dropout(0.3) { Generator = draws };
        var actual = dropout.Apply(x, training: true);
        Assert.Equal(expected.data<float>().ToArray(), actual.data<float>().ToArray());
        Assert.Contains(0f, actual.data<float>().ToArray());
        Assert.Equal(x.data<float>().ToArray(), dropout.Apply(x, training: false).data<float>().ToArray());
    }

    [Fact]
    public void Attention_with_dropout_from_the_cells_generator_matches_a_float64_reference()
    {
        TorchRuntime.EnsureAvailable();
        using var scope = NewDisposeScope();
        const double rate = 0.25;
        const int heads = 2, t = 5, d = 4;
        var g = new Generator(9);
        Tensor q = randn(1, heads, t, d, generator: g), k = randn(1, heads, t, d, generator: g), v = randn(1, heads, t, d, generator: g);
        using var draws = new Generator(11);
        var actual = new Gpt2Dropout(rate) { Generator = draws }.Attention(q, k, v, mask: null, training: true);

        // The masks the generator gives, drawn on their own; everything else by hand in float64.
        var keep = empty(1, heads, t, t).bernoulli_(1 - rate, new Generator(11)).data<float>().ToArray();
        float[] qa = q.data<float>().ToArray(), ka = k.data<float>().ToArray(), va = v.data<float>().ToArray(), ya = actual.data<float>().ToArray();
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < t; i++)
        {
            var scores = new double[i + 1];
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                for (int c = 0; c < d; c++) s += (double)qa[(h * t + i) * d + c] * ka[(h * t + j) * d + c];
                scores[j] = s / Math.Sqrt(d);
            }

            double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
            for (int c = 0; c < d; c++)
            {
                double y = 0;
                for (int j = 0; j <= i; j++) y += Math.Exp(scores[j] - max) / sum * keep[(h * t + i) * t + j] / (1 - rate) * va[(h * t + j) * d + c];
                Assert.Equal(y, ya[(h * t + i) * d + c], 5);
            }
        }
    }

    [Fact]
    public async Task Two_models_training_at_once_on_two_threads_draw_the_same_masks_as_each_alone()
    {
        TorchRuntime.EnsureAvailable();
        var config = Gpt2Config.Preset("test", vocabSize: 20) with { Dropout = 0.2 };
        float[] Run(long seed, Barrier? together)
        {
            using var scope = NewDisposeScope();
            using var model = new Gpt2Model(config, seed: 1);
            model.train();
            using var draws = new Generator(unchecked((ulong)seed));
            model.DropoutGenerator = draws;
            var ids = arange(12, dtype: ScalarType.Int64).remainder(20).reshape(2, 6);
            var outputs = new List<float>();
            for (int step = 0; step < 30; step++)
            {
                // Bounded: if the other thread failed, this one fails too instead of waiting for ever.
                if (together is not null && !together.SignalAndWait(TimeSpan.FromMinutes(2))) throw new TimeoutException("the other thread stopped");
                outputs.AddRange(model.forward(ids).data<float>().ToArray());
                torch.rand(8); // another user of the global generator in between
            }

            return outputs.ToArray();
        }

        float[] aloneA = Run(3, null), aloneB = Run(4, null);
        using var together = new Barrier(2);
        var a = Task.Factory.StartNew(() => Run(3, together), TaskCreationOptions.LongRunning);
        var b = Task.Factory.StartNew(() => Run(4, together), TaskCreationOptions.LongRunning);
        Assert.Equal(aloneA, await a);
        Assert.Equal(aloneB, await b);
        Assert.NotEqual(aloneA, aloneB);
    }
}
