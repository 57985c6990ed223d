using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.IA3;

/// <summary>
/// IA3 as PEFT's IA3. GPT-2: vectors on <c>c_attn</c> ([3d, 1], ones for q under k,v-only) and <c>mlp.c_proj</c>
/// ([1, 4d], feed-forward). Llama: PEFT's keys, [out, 1] on a projection's output (<c>….self_attn.k_proj.ia3_l</c>) and
/// [1, in] on <c>….mlp.down_proj.ia3_l</c>.
/// </summary>
public sealed class IA3HfMapping : IHfPeftMapping
{
    public static IA3HfMapping Instance { get; } = new();

    public string PeftType => "IA3";

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var ia3 = (IA3Method)method;
        if (shape.IsLlama)
        {
            var targets = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var (name, t) in stored)
            {
                string module = name.Split('.')[^2];
                targets.Add(module);
                // PEFT's IA3 vectors: [out, 1] on the output of a projection, [1, in] on the input of a feed-forward one.
                tensors.Add(new(LlamaTensorPrefix + name, module == "down_proj" ? t.reshape(1, -1) : t.reshape(-1, 1)));
            }

            var list = new JsonArray();
            foreach (string m in targets) list.Add(m);
            return new JsonObject
            {
                ["target_modules"] = list,
                ["feedforward_modules"] = new JsonArray("down_proj"),
                ["fan_in_fan_out"] = false,
                ["init_ia3_weights"] = true,
                ["modules_to_save"] = null,
            };
        }

        long d = shape.Width;
        for (int i = 0; i < shape.Layers; i++)
        {
            Tensor attention = stored[$"h.{i}.attn.c_attn.ia3_l"];
            if (ia3.Targets == IA3Method.TargetsKv)
            {
                attention = cat([ones(d, device: attention.device), attention], 0);
            }

            tensors.Add(new($"{Gpt2TensorPrefix}h.{i}.attn.c_attn.ia3_l", attention.reshape(3 * d, 1)));
            tensors.Add(new($"{Gpt2TensorPrefix}h.{i}.mlp.c_proj.ia3_l", stored[$"h.{i}.mlp.c_proj.ia3_l"].reshape(1, 4 * d)));
        }

        return new JsonObject
        {
            ["target_modules"] = new JsonArray("c_attn", "mlp.c_proj"),
            ["feedforward_modules"] = new JsonArray("mlp.c_proj"),
            ["fan_in_fan_out"] = true,
            ["init_ia3_weights"] = true,
            ["modules_to_save"] = null,
        };
    }

    public HfPeftImport Import(JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        var targets = Strings(cfg["target_modules"]).Order(StringComparer.Ordinal).ToArray();
        var feedforward = Strings(cfg["feedforward_modules"]);
        if (config.IsLlama)
        {
            bool keyValue = targets.SequenceEqual(["down_proj", "k_proj", "v_proj"]);
            if ((!keyValue && !targets.SequenceEqual(["down_proj", "k_proj", "q_proj", "v_proj"])) || feedforward.Count != 1 || feedforward[0] != "down_proj")
            {
                throw new NotSupportedException(
                    $"{path}: IA3 target_modules [{string.Join(", ", targets)}] / feedforward_modules [{string.Join(", ", feedforward)}]; a Llama base takes k_proj, v_proj (and q_proj) + down_proj (feed-forward).");
            }

            var flat = tensors.ToDictionary(kv => kv.Key, kv => kv.Key.EndsWith(".ia3_l", StringComparison.Ordinal) ? kv.Value.reshape(-1) : kv.Value, StringComparer.Ordinal);
            return new HfPeftImport(IA3Method.MethodName, new Dictionary<string, string> { ["targets"] = keyValue ? IA3Method.TargetsAuto : IA3Method.TargetsCAttn }, flat);
        }

        if (!targets.SequenceEqual(["c_attn", "mlp.c_proj"]) || feedforward.Count != 1 || feedforward[0] != "mlp.c_proj")
        {
            throw new NotSupportedException(
                $"{path}: IA3 target_modules [{string.Join(", ", targets)}] / feedforward_modules [{string.Join(", ", feedforward)}]; only c_attn + mlp.c_proj (feed-forward) is supported.");
        }

        var stored = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            stored[name] = name.EndsWith("attn.c_attn.ia3_l", StringComparison.Ordinal) || name.EndsWith("mlp.c_proj.ia3_l", StringComparison.Ordinal)
                ? t.reshape(-1)
                : t;
        }

        return new HfPeftImport(IA3Method.MethodName, new Dictionary<string, string> { ["targets"] = IA3Method.TargetsCAttn }, stored);
    }
}
