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

    /// <param name="config">The model's shape.</param>
    /// <param name="layer">This block's index (0-based), for the attention's per-layer scale.</param>
    /// <param name="dropout">The model's dropout rate, shared by all blocks.</param>
    public Gpt2Block(Gpt2Config config, int layer, Gpt2Dropout dropout) : base(nameof(Gpt2Block))
    {
        ln_1 = LayerNorm(config.Width, config.LayerNormEps);
        attn = new Gpt2Attention(config, layer, dropout);
        ln_2 = LayerNorm(config.Width, config.LayerNormEps);
        mlp = new Gpt2Mlp(config, dropout);
        RegisterComponents();
    }

    /// <summary>The block's attention (exposed for PEFT methods that wrap or extend it).</summary>
    public Gpt2Attention Attention => attn;

    /// <summary>The block's feed-forward part.</summary>
    public Gpt2Mlp Mlp => mlp;

    /// <summary>The LayerNorm before attention (<c>ln_1</c>).</summary>
    public LayerNorm AttentionNorm => ln_1;

    /// <summary>The LayerNorm before the MLP (<c>ln_2</c>).</summary>
    public LayerNorm MlpNorm => ln_2;

    /// <summary>
    /// One block. <paramref name="hooks"/> (block index <paramref name="layer"/>) may replace projections, change each
    /// sub-layer's output before its residual add and the block's output (see <see cref="Gpt2Hooks"/>). Call inside a DisposeScope.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? mask = null, LayerKeyValue? past = null, Gpt2Hooks? hooks = null, int layer = 0,
        List<LayerKeyValue>? presents = null)
    {
        using var normed1 = ln_1.forward(x);
        using var attended = attn.Forward(normed1, mask, past, hooks, layer, presents);
        Tensor attention = hooks is null ? attended : hooks.Sublayer(layer, Gpt2Sublayer.Attention, this, normed1, attended, training);
        using var afterAttention = x + attention;
        using var normed2 = ln_2.forward(afterAttention);
        using var fed = mlp.Forward(normed2, hooks, layer);
        Tensor feedForward = hooks is null ? fed : hooks.Sublayer(layer, Gpt2Sublayer.Mlp, this, normed2, fed, training);
        Tensor output = afterAttention + feedForward;
        return hooks is null ? output : hooks.Block(layer, output, training);
    }
}
