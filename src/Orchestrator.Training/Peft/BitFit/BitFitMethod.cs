using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;

namespace Orchestrator.Training.Peft.BitFit;

/// <summary>
/// BitFit: trains every bias of the base (c_attn, attn.c_proj, c_fc, mlp.c_proj, ln_1, ln_2 in each block, and ln_f);
/// 11·Width per layer + Width = 271,360 parameters on gpt2-medium (0.076%). GPT-2 has no separate task head. No options.
/// </summary>
public sealed class BitFitMethod : BaseSubsetMethod
{
    public const string MethodName = "bitfit";

    private BitFitMethod(PeftOptionReader options) : base(options)
    {
    }

    public static BitFitMethod Create(PeftOptionReader options) => new(options);

    protected override bool Selects(string name, ModelShape config) => name.EndsWith(".bias", StringComparison.Ordinal);

    /// <summary>A Llama-family base has biases only where its checkpoint has them (Qwen2's q/k/v, attention_bias).</summary>
    public override string? RefusalFor(ModelShape shape) => shape.IsLlama && !shape.QkvBias && !shape.OutputBias
        ? "the base has no biases to train (Llama-family projections and RMSNorms have none unless the checkpoint has them, as Qwen2's q/k/v biases)"
        : null;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        ThrowIfRefused(config);
        return base.CountParameters(config);
    }
}
