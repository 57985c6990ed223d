using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>
/// A lookup table [count, width] with one parameter, <c>weight</c> (used for <c>wte</c> and <c>wpe</c>). Managed rather than
/// TorchSharp's native <see cref="Embedding"/>, whose <c>weight</c> getter creates a new tensor wrapper on every call
/// (a leak outside a DisposeScope), while the tied LM head needs the token matrix on every forward pass.
/// </summary>
public sealed class Gpt2Embedding : Module<Tensor, Tensor>
{
    private Parameter weight;

    public Gpt2Embedding(long count, long width) : base(nameof(Gpt2Embedding))
    {
        weight = new Parameter(empty(count, width));
        RegisterComponents();
    }

    /// <summary>The table, [count, width].</summary>
    public Parameter Weight => weight;

    /// <summary>Ids of any shape → vectors of shape ids.shape + [width].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        long[] shape = [.. ids.shape, weight.shape[1]];
        return rows.view(shape);
    }
}
