using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.LlamaAdapter;

/// <summary>
/// LLaMA-Adapter with the scalar gate as PEFT's ADAPTION_PROMPT (<c>….attn.adaption_prompt</c>, on Llama
/// <c>….self_attn.adaption_prompt</c>); per-head gates have no PEFT type.
/// </summary>
public sealed class LlamaAdapterHfMapping : IHfPeftMapping
{
    public static LlamaAdapterHfMapping Instance { get; } = new();

    public string PeftType => "ADAPTION_PROMPT";

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var adaption = (LlamaAdapterMethod)method;
        if (adaption.Gate != LlamaAdapterMethod.GateScalar)
        {
            throw new NotSupportedException(
                $"{LlamaAdapterMethod.MethodName} with gate={adaption.Gate} (per-head tanh gates through c_proj) has no PEFT type; export gate=scalar or use PeftCheckpoint.");
        }

        var fields = new JsonObject
        {
            ["adapter_len"] = adaption.Length,
            ["adapter_layers"] = adaption.LayersFor(shape),
            ["target_modules"] = shape.IsLlama ? "self_attn" : "attn",
        };
        foreach (var (name, t) in stored) tensors.Add(new(TensorPrefix(shape) + name, t));
        return fields;
    }

    public HfPeftImport Import(JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int length = Required(cfg, "adapter_len", path).GetValue<int>();
        int layers = Required(cfg, "adapter_layers", path).GetValue<int>();
        var options = new Dictionary<string, string>
        {
            ["length"] = Integer(length),
            ["layers"] = Integer(layers),
            ["gate"] = LlamaAdapterMethod.GateScalar,
        };
        return new HfPeftImport(LlamaAdapterMethod.MethodName, options, tensors);
    }
}
