using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using Orchestrator.Training.Peft.PtuningV2;
using Orchestrator.Training.Peft.Shared;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Prefix;

/// <summary>
/// Prefix-tuning and P-tuning v2 as PEFT's PREFIX_TUNING, in the materialised inference form (one key/value table, PEFT's
/// grouped-query layout on Llama). A folder with <c>prefix_projection: true</c> imports as prefix-tuning, else as P-tuning v2.
/// </summary>
public sealed class PrefixHfMapping : IHfPeftMapping
{
    public static PrefixHfMapping Instance { get; } = new();

    public string PeftType => "PREFIX_TUNING";

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var prefix = (PrefixMethodBase)method;
        JsonObject fields = PromptLearning(shape, prefix.Length, prefix: true);
        fields["encoder_hidden_size"] = prefix.HiddenSize;
        fields["prefix_projection"] = prefix.Projection;
        tensors.Add(new(PromptEmbeddings, stored[PrefixMethodBase.StoredName]));
        return fields;
    }

    public HfPeftImport Import(JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int p = CheckPromptLearning(cfg, config, path, prefix: true);
        bool projection = cfg["prefix_projection"]?.GetValue<bool>() ?? false;
        var options = new Dictionary<string, string> { ["length"] = Integer(p) };
        if (projection && cfg["encoder_hidden_size"] is JsonNode h && h.GetValueKind() == JsonValueKind.Number)
        {
            options["hidden"] = Integer(h.GetValue<int>());
        }

        return new HfPeftImport(projection ? PrefixMethod.MethodName : PtuningV2Method.MethodName, options,
            PromptEmbeddingsAs(tensors, PrefixMethodBase.StoredName, path));
    }
}
