using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>GPT-2 feed-forward block: <c>c_fc</c> (Width → 4·Width), GELU with the tanh approximation ("gelu_new"), <c>c_proj</c>.</summary>
public sealed class Gpt2Mlp : Module
{
    private readonly Linear c_fc;
    private readonly Linear c_proj;
    private readonly Gpt2Dropout _dropout;

    public Gpt2Mlp(Gpt2Config config, Gpt2Dropout dropout) : base(nameof(Gpt2Mlp))
    {
        _dropout = dropout;
        c_fc = Linear(config.Width, config.InnerWidth);
        c_proj = Linear(config.InnerWidth, config.Width);
        RegisterComponents();
    }

    /// <summary>The input projection (<c>c_fc</c>).</summary>
    public Linear In => c_fc;

    /// <summary>The output projection (<c>c_proj</c>).</summary>
    public Linear Out => c_proj;

    /// <summary>x [B,T,C] → [B,T,C]; <paramref name="hooks"/> may replace the two projections of block <paramref name="layer"/>.</summary>
    public Tensor Forward(Tensor x, Gpt2Hooks? hooks = null, int layer = 0)
    {
        using var hidden = hooks is null ? c_fc.forward(x) : hooks.Project(layer, Gpt2Projection.MlpIn, c_fc, x, training);
        using var activated = functional.gelu(hidden, TorchSharp.Modules.GELU.Approximate.tanh);
        using var projected = hooks is null ? c_proj.forward(activated) : hooks.Project(layer, Gpt2Projection.MlpOut, c_proj, activated, training);
        return _dropout.Apply(projected, training);
    }
}
