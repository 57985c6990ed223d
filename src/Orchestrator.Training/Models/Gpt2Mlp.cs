using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>GPT-2 feed-forward block: <c>c_fc</c> (Width → 4·Width), GELU with the tanh approximation ("gelu_new"), <c>c_proj</c>.</summary>
public sealed class Gpt2Mlp : Module
{
    private readonly Linear c_fc;
    private readonly Linear c_proj;
    private readonly double _dropout;

    public Gpt2Mlp(Gpt2Config config) : base(nameof(Gpt2Mlp))
    {
        _dropout = config.Dropout;
        c_fc = Linear(config.Width, config.InnerWidth);
        c_proj = Linear(config.InnerWidth, config.Width);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var hidden = c_fc.forward(x);
        using var activated = functional.gelu(hidden, TorchSharp.Modules.GELU.Approximate.tanh);
        using var projected = c_proj.forward(activated);
        return functional.dropout(projected, training ? _dropout : 0.0, training);
    }
}
