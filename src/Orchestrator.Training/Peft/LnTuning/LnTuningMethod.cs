using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;

namespace Orchestrator.Training.Peft.LnTuning;

/// <summary>
/// LN-tuning: only the LayerNorms' gains and biases train (<c>ln_1</c> and <c>ln_2</c> of every block and the final
/// <c>ln_f</c>); everything else is frozen. Checkpoints store exactly those tensors. Parameters <c>4d</c> per layer plus
/// <c>2d</c>: 100,352 on gpt2-medium (0.028%). No options.
/// </summary>
public sealed class LnTuningMethod : BaseSubsetMethod
{
    public const string MethodName = "ln-tuning";

    private LnTuningMethod(PeftOptionReader options) : base(options)
    {
    }

    public static LnTuningMethod Create(PeftOptionReader options) => new(options);

    protected override bool Selects(string name, ModelShape config) => config.IsLlama
        ? name == "norm.weight" || name.EndsWith("_layernorm.weight", StringComparison.Ordinal) // RMSNorm gains: 2d per layer + d
        : name.StartsWith("ln_f.", StringComparison.Ordinal) ||
        name.Contains(".ln_1.", StringComparison.Ordinal) ||
        name.Contains(".ln_2.", StringComparison.Ordinal);
}
