using Orchestrator.Training.Models;
using TorchSharp.Modules;

namespace Orchestrator.Training.Peft.Finetune;

/// <summary>Full fine-tuning: every parameter of the model is trainable.</summary>
public sealed class FinetuneMethod : IPeftMethod
{
    public const string MethodName = "finetune";

    public string Name => MethodName;

    public IReadOnlyList<Parameter> Prepare(Gpt2Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var trainable = new List<Parameter>();
        foreach (Parameter parameter in model.parameters())
        {
            parameter.requires_grad = true;
            trainable.Add(parameter);
        }

        return trainable;
    }
}
