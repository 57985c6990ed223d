using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Lora;

/// <summary>
/// LoRA as PEFT's LORA. GPT-2: one LoRA on the fused <c>c_attn</c> (Conv1D, <c>fan_in_fan_out: true</c>); q,v-only LoRA is
/// written exactly as a c_attn LoRA of rank 2r (PEFT_METHODS.md §4). Llama: PEFT's keys
/// (<c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c>), <c>fan_in_fan_out: false</c>.
/// </summary>
public sealed class LoraHfMapping : IHfPeftMapping
{
    public static LoraHfMapping Instance { get; } = new();

    public string PeftType => "LORA";

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var lora = (LoraMethod)method;
        if (shape.IsLlama)
        {
            foreach (var (name, t) in stored) tensors.Add(new(LlamaTensorPrefix + name, t)); // layers.{i}.self_attn.q_proj.lora_A.weight …
            var targets = new JsonArray();
            foreach (string module in lora.LlamaTargets) targets.Add(module);
            return LoraConfig(lora.Rank, lora.Alpha, lora.Dropout, targets, fanInFanOut: false);
        }

        long d = shape.Width;
        int r = lora.Rank;
        double alpha = lora.Alpha;
        for (int i = 0; i < shape.Layers; i++)
        {
            string prefix = $"h.{i}.attn.c_attn.";
            Tensor a, b;
            if (lora.Targets == LoraMethod.TargetsCAttn)
            {
                a = stored[prefix + "lora_A.weight"];
                b = stored[prefix + "lora_B.weight"];
            }
            else
            {
                // Exact q,v-only LoRA as one c_attn LoRA of rank 2r (PEFT_METHODS.md §4): A = [A_q; A_v];
                // B_q in rows 0..d-1 / columns 0..r-1, B_v in rows 2d..3d-1 / columns r..2r-1, zeros elsewhere; α' = 2α.
                a = cat([stored[prefix + "q.lora_A.weight"], stored[prefix + "v.lora_A.weight"]], 0);
                b = zeros(3 * d, 2L * r, device: a.device);
                b.narrow(0, 0, d).narrow(1, 0, r).copy_(stored[prefix + "q.lora_B.weight"]);
                b.narrow(0, 2 * d, d).narrow(1, r, r).copy_(stored[prefix + "v.lora_B.weight"]);
            }

            tensors.Add(new(Gpt2TensorPrefix + prefix + "lora_A.weight", a));
            tensors.Add(new(Gpt2TensorPrefix + prefix + "lora_B.weight", b));
        }

        bool qv = lora.Targets == LoraMethod.TargetsQv;
        return LoraConfig(qv ? 2 * r : r, qv ? 2 * alpha : alpha, lora.Dropout, new JsonArray("c_attn"), fanInFanOut: true);
    }

    public HfPeftImport Import(JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        var targets = Strings(cfg["target_modules"]);
        if (config.IsLlama)
        {
            if (targets.Count == 0 || targets.Any(t => !LoraMethod.LlamaModules.Contains(t)))
            {
                throw new NotSupportedException($"{path}: LoRA target_modules [{string.Join(", ", targets)}]; a Llama base takes {string.Join(", ", LoraMethod.LlamaModules)}.");
            }

            if (cfg["fan_in_fan_out"]?.GetValue<bool>() == true) throw new NotSupportedException($"{path}: fan_in_fan_out is true; Llama's projections are nn.Linear.");
        }
        else if (targets.Count != 1 || !targets[0].EndsWith("c_attn", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"{path}: LoRA target_modules [{string.Join(", ", targets)}]; only [\"c_attn\"] is supported.");
        }

        if (cfg["use_rslora"]?.GetValue<bool>() == true) throw new NotSupportedException($"{path}: use_rslora is not supported.");
        if (cfg["layers_to_transform"] is JsonNode l && l.GetValueKind() != JsonValueKind.Null) throw new NotSupportedException($"{path}: layers_to_transform is not supported.");
        if (cfg["bias"]?.GetValue<string>() is { } bias && bias != "none") throw new NotSupportedException($"{path}: bias='{bias}' is not supported.");
        if (cfg["rank_pattern"] is JsonObject rp && rp.Count > 0) throw new NotSupportedException($"{path}: rank_pattern is not supported.");
        if (cfg["alpha_pattern"] is JsonObject ap && ap.Count > 0) throw new NotSupportedException($"{path}: alpha_pattern is not supported.");
        int r = Required(cfg, "r", path).GetValue<int>();
        var options = new Dictionary<string, string>
        {
            ["r"] = Integer(r),
            ["alpha"] = Number(cfg["lora_alpha"] ?? JsonValue.Create(8)),
            ["dropout"] = Number(cfg["lora_dropout"] ?? JsonValue.Create(0.0)),
            ["targets"] = config.IsLlama ? string.Join(",", targets) : LoraMethod.TargetsCAttn,
        };
        return new HfPeftImport(LoraMethod.MethodName, options, tensors);
    }

    /// <summary>PEFT's LoraConfig fields for a plain LoRA (no bias, no rsLoRA, every layer).</summary>
    private static JsonObject LoraConfig(int rank, double alpha, double dropout, JsonArray targets, bool fanInFanOut) => new()
    {
        ["r"] = rank,
        ["lora_alpha"] = alpha,
        ["lora_dropout"] = dropout,
        ["target_modules"] = targets,
        ["fan_in_fan_out"] = fanInFanOut,
        ["bias"] = "none",
        ["use_rslora"] = false,
        ["init_lora_weights"] = true,
        ["layers_to_transform"] = null,
        ["layers_pattern"] = null,
        ["rank_pattern"] = new JsonObject(),
        ["alpha_pattern"] = new JsonObject(),
        ["modules_to_save"] = null,
    };
}
