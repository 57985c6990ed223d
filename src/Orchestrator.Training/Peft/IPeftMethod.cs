using Orchestrator.Training.Models;
using TorchSharp.Modules;

namespace Orchestrator.Training.Peft;

/// <summary>
/// A parameter-efficient fine-tuning method (or plain fine-tuning). Each method lives in its own folder under Peft/ and is
/// listed in <see cref="PeftRegistry"/>.
/// </summary>
public interface IPeftMethod
{
    /// <summary>The registry name, e.g. "finetune".</summary>
    string Name { get; }

    /// <summary>
    /// Prepares <paramref name="model"/> for training with this method: sets requires_grad on the base parameters (frozen or
    /// trainable) and creates/attaches any extra parameters. Returns exactly the parameters the optimizer must update.
    /// </summary>
    IReadOnlyList<Parameter> Prepare(Gpt2Model model);
}
