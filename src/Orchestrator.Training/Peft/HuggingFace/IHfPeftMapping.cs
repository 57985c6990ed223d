using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.HuggingFace;

/// <summary>
/// How one method maps to a Hugging Face PEFT type: the <c>adapter_config.json</c> fields it writes beside the shared ones
/// (<see cref="HfPeftFormat"/> adds <c>peft_type</c>, <c>task_type</c>, <c>base_model_name_or_path</c>, <c>revision</c>,
/// <c>inference_mode</c>), its tensors under PEFT's key names for each family, and how a folder of that type becomes the
/// method again. Each method's folder carries its own; <see cref="PeftRegistry"/> lists them beside the methods.
/// </summary>
public interface IHfPeftMapping
{
    /// <summary>PEFT's name for the type (<c>LORA</c>, <c>PREFIX_TUNING</c>, …).</summary>
    string PeftType { get; }

    /// <summary>
    /// False when folders of <see cref="PeftType"/> import as another method (black-box tuning's prompt imports as prompt
    /// tuning); <see cref="Import"/> is then never called.
    /// </summary>
    bool Imports => true;

    /// <summary>
    /// The method's config fields; adds its tensors (full PEFT key names, in file order) to <paramref name="tensors"/>.
    /// </summary>
    /// <param name="stored">The method's stored tensors by name (<see cref="IPeftMethod.StoredTensors"/>).</param>
    /// <param name="tokenizer">The tokenizer PEFT would load to initialise a prompt from text, or null.</param>
    /// <exception cref="NotSupportedException">A variant PEFT cannot express.</exception>
    JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer);

    /// <summary>The method, its options and its stored tensors from a folder's config and tensors (PEFT prefixes stripped).</summary>
    /// <param name="path">The config file, for messages.</param>
    /// <exception cref="FormatException">The folder does not fit the model.</exception>
    /// <exception cref="NotSupportedException">A PEFT configuration this project cannot express.</exception>
    HfPeftImport Import(JsonObject config, ModelShape shape, Dictionary<string, Tensor> tensors, string path);
}

/// <summary>What a PEFT folder becomes: a registered method with options, and its stored tensors.</summary>
public sealed record HfPeftImport(string Method, Dictionary<string, string> Options, Dictionary<string, Tensor> Tensors);
