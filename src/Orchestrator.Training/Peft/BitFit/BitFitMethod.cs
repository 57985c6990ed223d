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

    protected override bool Selects(string name, Gpt2Config config) => name.EndsWith(".bias", StringComparison.Ordinal);
}
