using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>One pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
public sealed class Gpt2Block : Module
{
    private readonly LayerNorm ln_1;
    private readonly Gpt2Attention attn;
    private readonly LayerNorm ln_2;
    private readonly Gpt2Mlp mlp;

    public Gpt2Block(Gpt2Config config) : base(nameof(Gpt2Block))
    {
        ln_1 = LayerNorm(config.Width, config.LayerNormEps);
        attn = new Gpt2Attention(config);
        ln_2 = LayerNorm(config.Width, config.LayerNormEps);
        mlp = new Gpt2Mlp(config);
        RegisterComponents();
    }

    /// <summary>The block's attention (exposed for PEFT methods that wrap or extend it).</summary>
    public Gpt2Attention Attention => attn;

    /// <summary>The block's feed-forward part.</summary>
    public Gpt2Mlp Mlp => mlp;

    public Tensor Forward(Tensor x, Tensor? mask = null, LayerKeyValue? past = null)
    {
        using var normed1 = ln_1.forward(x);
        using var attended = attn.Forward(normed1, mask, past);
        using var afterAttention = x + attended;
        using var normed2 = ln_2.forward(afterAttention);
        using var fed = mlp.Forward(normed2);
        return afterAttention + fed;
    }
}
