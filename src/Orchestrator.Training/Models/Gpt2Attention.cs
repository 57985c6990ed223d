using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>
/// GPT-2 causal self-attention with Hugging Face parameter names: <c>c_attn</c> (fused q|k|v projection, output columns
/// [q | k | v], each head a contiguous HeadDim slice) and <c>c_proj</c>.
/// Both are <see cref="Linear"/> layers, so their weights are stored [out, in]; Hugging Face's Conv1D stores the same
/// matrices transposed, [in, out] (y = x·W + b). Importing a Hugging Face checkpoint must therefore transpose
/// <c>c_attn</c>, <c>c_proj</c>, <c>c_fc</c> and <c>mlp.c_proj</c> weights (see Checkpoints/ModelCheckpoint).
/// </summary>
public sealed class Gpt2Attention : Module
{
    private readonly Linear c_attn;
    private readonly Linear c_proj;
    private readonly int _heads;
    private readonly int _width;
    private readonly Gpt2Dropout _dropout;

    // scaled_dot_product_attention divides the scores by √HeadDim; queries are multiplied by this to get the config's scale.
    private readonly double _queryFactor;

    public Gpt2Attention(Gpt2Config config, int layer, Gpt2Dropout dropout) : base(nameof(Gpt2Attention))
    {
        _heads = config.Heads;
        _width = config.Width;
        _dropout = dropout;
        _queryFactor = (config.ScaleAttentionWeights ? 1.0 : Math.Sqrt(config.HeadDim)) * (config.ScaleByInverseLayerIndex ? 1.0 / (layer + 1) : 1.0);
        c_attn = Linear(config.Width, 3L * config.Width);
        c_proj = Linear(config.Width, config.Width);
        RegisterComponents();
    }

    /// <summary>The fused q|k|v projection (<c>c_attn</c>), [3·Width, Width] as a Linear.</summary>
    public Linear Qkv => c_attn;

    /// <summary>The output projection (<c>c_proj</c>).</summary>
    public Linear Output => c_proj;

    /// <summary>Number of heads.</summary>
    public int Heads => _heads;

    /// <summary>
    /// x [B,T,C] → [B,T,C]. Call inside a DisposeScope (<see cref="Gpt2Model.Hidden"/> opens one), which releases the temporaries. <paramref name="mask"/> is null for plain causal attention, else a boolean mask broadcastable to
    /// [B, Heads, T, P+T] (true = may attend). <paramref name="past"/> keys/values are prepended to the current ones.
    /// <paramref name="hooks"/> may replace the two projections (<see cref="Gpt2Hooks.Project"/>) of block <paramref name="layer"/>.
    /// <paramref name="presents"/>, when given, receives this layer's keys/values (past + current, [B, Heads, P+T, HeadDim]) for a
    /// KV cache; they stay in the caller's DisposeScope.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? mask = null, LayerKeyValue? past = null, Gpt2Hooks? hooks = null, int layer = 0,
        List<LayerKeyValue>? presents = null)
    {
        long b = x.shape[0], t = x.shape[1];
        long headDim = _width / _heads;
        using var qkv = hooks is null ? c_attn.forward(x) : hooks.Project(layer, Gpt2Projection.AttentionQkv, c_attn, x, training);
        Tensor[] parts = qkv.split(_width, -1);
        using var q0 = parts[0].view(b, t, _heads, headDim).transpose(1, 2);
        using var q = _queryFactor == 1.0 ? q0.alias() : q0 * _queryFactor;
        Tensor k = parts[1].view(b, t, _heads, headDim).transpose(1, 2);
        Tensor v = parts[2].view(b, t, _heads, headDim).transpose(1, 2);
        foreach (var part in parts) part.Dispose();
        if (past is not null)
        {
            var kk = cat([past.Key, k], 2);
            var vv = cat([past.Value, v], 2);
            k.Dispose();
            v.Dispose();
            k = kk;
            v = vv;
        }

        using var y = _dropout.Attention(q, k, v, mask, training);
        if (presents is null)
        {
            k.Dispose();
            v.Dispose();
        }
        else
        {
            presents.Add(new LayerKeyValue(k, v));
        }

        using var merged = y.transpose(1, 2).reshape(b, t, _width);
        using var projected = hooks is null ? c_proj.forward(merged) : hooks.Project(layer, Gpt2Projection.AttentionOutput, c_proj, merged, training);
        return _dropout.Apply(projected, training);
    }
}
