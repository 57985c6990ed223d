using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Bbt;

/// <summary>
/// Black-box tuning's inference form is a plain prompt: it exports as PEFT's PROMPT_TUNING and such a folder imports as
/// prompt tuning.
/// </summary>
public sealed class BbtHfMapping : IHfPeftMapping
{
    public static BbtHfMapping Instance { get; } = new();

    public string PeftType => "PROMPT_TUNING";

    public bool Imports => false;

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var bbt = (BbtMethod)method;
        JsonObject fields = PromptLearning(shape, bbt.Length);
        PromptInitFields(fields, bbt.Init, bbt.InitText, bbt.SampledVocabulary, shape, tokenizer);
        tensors.Add(new(PromptEmbeddings, stored[BbtMethod.StoredName]));
        return fields;
    }

    public HfPeftImport Import(JsonObject config, ModelShape shape, Dictionary<string, Tensor> tensors, string path) =>
        throw new NotSupportedException($"{path}: a {PeftType} folder imports as prompt tuning.");
}
