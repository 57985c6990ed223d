using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>
/// Initialisations used by the methods, all drawn from an explicit generator (TorchSharp 0.107's <c>nn.init</c> functions
/// ignore generators; <c>Tensor.normal_/uniform_</c> honour them). Call under no_grad.
/// </summary>
internal static class PeftInit
{
    /// <summary>N(0, std²).</summary>
    public static Tensor Normal(Tensor t, double std, Generator generator) => t.normal_(0, std, generator);

    /// <summary>U(−bound, bound).</summary>
    public static Tensor Uniform(Tensor t, double bound, Generator generator) => t.uniform_(-bound, bound, generator);

    /// <summary>
    /// PyTorch's default for Linear weights and LSTM-free layers: kaiming_uniform with a = √5 on a weight [out, in], i.e.
    /// U(±1/√in) (gain √(2/(1+5)) · √(3/in)).
    /// </summary>
    public static Tensor KaimingUniformA5(Tensor weight, Generator generator) => Uniform(weight, 1.0 / Math.Sqrt(weight.shape[^1]), generator);

    /// <summary>PyTorch's default Linear bias: U(±1/√fan_in).</summary>
    public static Tensor LinearBias(Tensor bias, long fanIn, Generator generator) => Uniform(bias, 1.0 / Math.Sqrt(fanIn), generator);

    /// <summary>Normal(0, std²) truncated to ±2·std by redrawing the values outside (as TF's truncated_normal).</summary>
    public static Tensor TruncatedNormal(Tensor t, double std, Generator generator)
    {
        t.normal_(0, std, generator);
        for (int round = 0; round < 100; round++)
        {
            using var scope = NewDisposeScope();
            var outside = t.abs() > 2 * std;
            if (!outside.any().item<bool>())
            {
                break;
            }

            var fresh = empty_like(t).normal_(0, std, generator);
            t.copy_(where(outside, fresh, t));
        }

        return t;
    }

    /// <summary>PyTorch's default init of a Linear layer (weight kaiming-uniform a=√5, bias U(±1/√in)).</summary>
    public static void DefaultLinear(TorchSharp.Modules.Linear linear, Generator generator)
    {
        KaimingUniformA5(linear.weight, generator);
        if (linear.bias is not null)
        {
            LinearBias(linear.bias, linear.weight.shape[1], generator);
        }
    }
}

/// <summary>
/// Dropout drawn from the method's own generator (seeded from <see cref="PeftContext.Seed"/>), so that a method's training
/// is reproducible whatever else used the global torch generator.
/// </summary>
internal sealed class PeftDropout(double rate, Generator generator) : IDisposable
{
    public double Rate { get; } = rate;

    /// <summary>x with each element zeroed with probability <see cref="Rate"/> and the rest scaled by 1/(1−rate); x itself (an alias) when not training.</summary>
    public Tensor Apply(Tensor x, bool training)
    {
        if (!training || Rate <= 0) return x.alias();
        using var scope = NewDisposeScope();
        Tensor keep;
        if (PinnedLength is { } length && x.dim() == 3)
        {
            // Masks for [B, length, d] whatever the padded length T of this batch: positions past `length` are padding.
            long t = x.shape[1];
            keep = empty(x.shape[0], length, x.shape[2], dtype: x.dtype, device: x.device).bernoulli_(1 - Rate, generator);
            keep = t <= length ? keep.narrow(1, 0, t) : cat([keep, ones(x.shape[0], t - length, x.shape[2], dtype: x.dtype, device: x.device)], 1);
        }
        else
        {
            keep = empty_like(x).bernoulli_(1 - Rate, generator);
        }

        return (x * keep / (1 - Rate)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// When set, masks of a [B, T, d] input are drawn for [B, PinnedLength, d] and cut (or padded with ones) to T, so the
    /// random stream does not depend on how far the batch was padded (see <see cref="Packing.IPackableMethod.PinDropoutLength"/>).
    /// </summary>
    public long? PinnedLength { get; set; }

    public void Dispose() => generator.Dispose();
}
