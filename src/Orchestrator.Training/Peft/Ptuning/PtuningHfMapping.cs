using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Ptuning;

/// <summary>P-tuning as PEFT's P_TUNING: the prompt encoder's output as the prompt table, with the encoder's settings.</summary>
public sealed class PtuningHfMapping : IHfPeftMapping
{
    public static PtuningHfMapping Instance { get; } = new();

    public string PeftType => "P_TUNING";

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var ptuning = (PtuningMethod)method;
        JsonObject fields = PromptLearning(shape, ptuning.Length);
        fields["encoder_reparameterization_type"] = ptuning.Encoder.ToUpperInvariant();
        fields["encoder_hidden_size"] = ptuning.HiddenFor(shape.Width);
        fields["encoder_num_layers"] = 2;
        fields["encoder_dropout"] = ptuning.EncoderDropout;
        tensors.Add(new(PromptEmbeddings, stored[PtuningMethod.StoredName]));
        return fields;
    }

    public HfPeftImport Import(JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int p = CheckPromptLearning(cfg, config, path);
        string encoder = (cfg["encoder_reparameterization_type"]?.GetValue<string>() ?? "MLP").ToLowerInvariant();
        var options = new Dictionary<string, string> { ["length"] = Integer(p), ["encoder"] = encoder };
        if (cfg["encoder_hidden_size"] is JsonNode h && h.GetValueKind() == JsonValueKind.Number)
        {
            options["hidden"] = Integer(h.GetValue<int>());
        }

        if (cfg["encoder_dropout"] is JsonNode dr && dr.GetValueKind() == JsonValueKind.Number)
        {
            options["dropout"] = Number(dr);
        }

        return new HfPeftImport(PtuningMethod.MethodName, options, PromptEmbeddingsAs(tensors, PtuningMethod.StoredName, path));
    }
}
