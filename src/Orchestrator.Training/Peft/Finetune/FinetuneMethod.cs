using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;

namespace Orchestrator.Training.Peft.Finetune;

/// <summary>Full fine-tuning: every parameter of the model is trainable (and stored). No options.</summary>
public sealed class FinetuneMethod : BaseSubsetMethod
{
    public const string MethodName = "finetune";

    public FinetuneMethod() : this(new PeftOptionReader(MethodName, null))
    {
    }

    private FinetuneMethod(PeftOptionReader options) : base(options)
    {
    }

    /// <summary>Reads the (no) options; unknown ones are reported by the reader.</summary>
    public static FinetuneMethod Create(PeftOptionReader options) => new(options);

    protected override bool Selects(string name, ModelShape config) => true;
}
