using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HeadOnly;
using Orchestrator.Training.Peft.Proxy;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.HuggingFace;

/// <summary>
/// Export and import in the Hugging Face PEFT format (PEFT_METHODS.md §5): <c>adapter_config.json</c> (sorted keys, indent 2)
/// and <c>adapter_model.safetensors</c> (metadata format=pt) for LoRA (LORA), prefix-tuning and P-tuning v2 (PREFIX_TUNING,
/// the materialised inference form), prompt tuning (PROMPT_TUNING), P-tuning (P_TUNING, the encoder's output), IA3 and
/// LLaMA-Adapter with the scalar gate (ADAPTION_PROMPT). Methods PEFT has no type for whose weights are a plain GPT-2 are
/// written as a full Hugging Face GPT-2 checkpoint (<c>config.json</c> + <c>model.safetensors</c>, <c>transformer.*</c> keys,
/// Conv1D weights [in, out]): the base with the method's weights (fine-tuning, FT-top, BitFit, LN-tuning, Child-Tuning) or
/// the untied <c>lm_head.weight</c> (head-only without bias, <c>tie_word_embeddings: false</c>); <c>config.json</c> then
/// names the method under <c>orchestrator_peft</c> so that <see cref="Import"/> can rebuild it. Adapters, AdapterFusion,
/// head-only with a bias and proxy-tuning are refused (<see cref="FullCheckpointRefusal"/>): transformers would load their
/// folder as something else. Folders written before that rule (adapters' tensors under <c>transformer.h.{i}.adapter*</c>,
/// proxy's expert) still import here. Black-box tuning exports its materialised prompt as PROMPT_TUNING (it imports as
/// prompt tuning).
/// <para>
/// Each PEFT type's config fields, key names per family and import live in its method's folder (an
/// <see cref="IHfPeftMapping"/>, listed beside the method by <see cref="PeftRegistry"/>); this class holds what they share:
/// the two files, the fields every PEFT config has, key prefixes on import, and the full-checkpoint path.
/// </para>
/// <para>
/// On a Llama-family base the keys are PEFT's for Llama (<c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c>,
/// <c>….self_attn.k_proj.ia3_l</c> [out, 1], <c>….mlp.down_proj.ia3_l</c> [1, in], <c>….self_attn.adaption_prompt</c>), with
/// <c>fan_in_fan_out: false</c>; prefix-tuning writes PEFT's grouped-query layout (<c>token_dim</c> = KeyValueHeads·HeadDim,
/// <c>num_attention_heads</c> = KeyValueHeads). Methods without a PEFT type whose result is a plain model (fine-tuning,
/// FT-top, Child-Tuning, LN-tuning, BitFit on a base with biases, head-only without bias) are written as a full
/// transformers Llama checkpoint (<see cref="ExportFullLlama"/>); the others are refused by <see cref="FullCheckpointRefusal"/>.
/// </para>
/// </summary>
public static class HfPeftFormat
{
    public const string AdapterConfigFile = "adapter_config.json";
    public const string AdapterWeightsFile = "adapter_model.safetensors";
    public const string FullConfigFile = "config.json";
    public const string FullWeightsFile = "model.safetensors";
    public const string MethodKey = "orchestrator_peft";

    private static readonly string[] Conv1DSuffixes = [".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"];

    /// <summary>The PEFT type a method exports to, or null when it is written as a full checkpoint.</summary>
    public static string? PeftTypeOf(IPeftMethod method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return PeftRegistry.HuggingFaceMapping(method.Name)?.PeftType;
    }

    /// <summary>
    /// Writes <paramref name="method"/> (prepared or loaded on <paramref name="model"/>) to <paramref name="directory"/>.
    /// </summary>
    /// <exception cref="NotSupportedException">
    /// A variant PEFT cannot express (LLaMA-Adapter with per-head gates), or a method whose full checkpoint Hugging Face would
    /// load as something else (<see cref="FullCheckpointRefusal"/>): nothing is written then.
    /// </exception>
    /// <param name="tokenizerNameOrPath">
    /// The tokenizer PEFT would load to initialise a new prompt from text (<c>tokenizer_name_or_path</c>); defaults to
    /// <paramref name="baseModelNameOrPath"/> (a GPT-2 folder carries its tokenizer). Without either, a text-initialised prompt
    /// is labelled RANDOM: PEFT refuses TEXT without a tokenizer.
    /// </param>
    public static void Export(IPeftMethod method, CausalLm model, string directory, string? baseModelNameOrPath = null, string? tokenizerNameOrPath = null)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        if (PeftTypeOf(method) is null && FullCheckpointRefusal(method) is { } reason)
        {
            throw new NotSupportedException(reason); // before anything is written
        }

        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var config = model.Shape;
        var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        if (PeftRegistry.HuggingFaceMapping(method.Name) is not { } mapping)
        {
            if (model is LlamaModel llama) ExportFullLlama(method, llama, directory, baseModelNameOrPath);
            else ExportFull(method, model, directory, baseModelNameOrPath);
            return;
        }

        var tensors = new List<KeyValuePair<string, Tensor>>();
        JsonObject fields = mapping.Export(method, config, stored, tensors, tokenizerNameOrPath ?? baseModelNameOrPath);
        fields["peft_type"] = mapping.PeftType;
        fields["task_type"] = "CAUSAL_LM";
        fields["base_model_name_or_path"] = baseModelNameOrPath;
        fields["revision"] = null;
        fields["inference_mode"] = true;
        WriteJson(Path.Combine(directory, AdapterConfigFile), Sorted(fields));
        SafeTensors.Save(Path.Combine(directory, AdapterWeightsFile),
            tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().to_type(ScalarType.Float32).contiguous())),
            new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Reads a folder written by <see cref="Export"/> (or by PEFT for the supported types) and builds the method on
    /// <paramref name="model"/> in inference form. For a full checkpoint the base weights in the folder replace
    /// <paramref name="model"/>'s. Dispose the result.
    /// </summary>
    /// <exception cref="FormatException">The folder or its tensors do not fit.</exception>
    /// <exception cref="NotSupportedException">A PEFT configuration this project cannot express.</exception>
    public static IPeftMethod Import(CausalLm model, string directory, PeftContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        context ??= PeftContext.Default;
        string adapterConfig = Path.Combine(directory, AdapterConfigFile);
        if (File.Exists(adapterConfig))
        {
            return ImportAdapter(model, directory, adapterConfig, context);
        }

        string fullConfig = Path.Combine(directory, FullConfigFile);
        if (File.Exists(fullConfig))
        {
            return ImportFull(model, directory, fullConfig, context);
        }

        throw new FileNotFoundException($"{directory} has neither {AdapterConfigFile} (PEFT) nor {FullConfigFile} (full checkpoint).");
    }

    /// <summary>
    /// Why <paramref name="method"/> cannot be exported as a full Hugging Face checkpoint, or null when it can. transformers
    /// loads such a folder as a plain GPT2LMHeadModel or LlamaForCausalLM and silently drops tensors it does not know:
    /// adapters' modules (the folder would evaluate as the base model), a head-only bias (neither family's lm_head has one)
    /// and proxy-tuning's decoding-time mixture (the folder would be the expert alone). The AdapterHub <c>adapters</c> format
    /// is not written by this tool.
    /// </summary>
    public static string? FullCheckpointRefusal(IPeftMethod method)
    {
        ArgumentNullException.ThrowIfNull(method);
        const string Keep = "keep the cell's own checkpoint (PeftCheckpoint: orchestrator generate --adapter and reproduce read it)";
        return method switch
        {
            Adapter.AdapterMethod or AdapterHoulsby.AdapterHoulsbyMethod or AdapterParallel.AdapterParallelMethod or AdapterFusion.AdapterFusionMethod =>
                $"{method.Name} has no Hugging Face PEFT type, and as a full checkpoint (GPT-2 or Llama) transformers would drop its adapter tensors without a word and " +
                $"evaluate the base model; the AdapterHub 'adapters' format is not written by this tool: {Keep}",
            HeadOnlyMethod { Bias: true } =>
                $"head-only with bias=true: transformers' output layer (GPT-2's and Llama's lm_head) has no bias, so a full checkpoint would load without it; export bias=false or {Keep}",
            ProxyMethod =>
                $"proxy-tuning mixes base, expert and anti-expert logits at decoding time; a full checkpoint would load as the expert alone: {Keep}",
            _ => null,
        };
    }

    private static void ExportFull(IPeftMethod method, CausalLm model, string directory, string? baseModelNameOrPath)
    {
        Gpt2Model weightsOf = (Gpt2Model)model;
        var config = JsonNode.Parse(weightsOf.Config.ToJson())!.AsObject();
        var options = new JsonObject();
        foreach (var (k, v) in method.Options.OrderBy(kv => kv.Key, StringComparer.Ordinal)) options[k] = v;
        config[MethodKey] = new JsonObject { ["method"] = method.Name, ["options"] = options, ["base_model_name_or_path"] = baseModelNameOrPath };
        if (method is HeadOnlyMethod)
        {
            config["tie_word_embeddings"] = false; // lm_head.weight is its own tensor (Hugging Face loads it untied)
        }

        WriteJson(Path.Combine(directory, FullConfigFile), config);

        var tensors = new List<KeyValuePair<string, Tensor>>();
        var baseNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, p) in weightsOf.named_parameters())
        {
            baseNames.Add(name);
            tensors.Add(new("transformer." + name, IsConv1D(name) ? p.detach().t().contiguous() : p.detach()));
        }

        foreach (var (name, t) in method.StoredTensors().Where(kv => !baseNames.Contains(kv.Key)))
        {
            // The output layer sits beside the transformer in Hugging Face's GPT2LMHeadModel (lm_head.weight).
            tensors.Add(new(name.StartsWith("lm_head.", StringComparison.Ordinal) ? name : "transformer." + name, t.detach()));
        }

        SafeTensors.Save(Path.Combine(directory, FullWeightsFile),
            tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to_type(ScalarType.Float32))),
            new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "Orchestrator.Training" });
    }

    /// <summary>Files of a Llama-family folder a full export carries over unchanged: the tokenizer and generation settings.</summary>
    private static readonly string[] LlamaCopiedFiles =
    [
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        LlamaCheckpoint.GenerationConfigFile,
    ];

    /// <summary>
    /// A full transformers Llama-family checkpoint of a method whose result is a plain model: <c>config.json</c> (the base
    /// folder's when <paramref name="baseModelNameOrPath"/> is one, else the model's config; <c>torch_dtype</c> float32, the
    /// method under <see cref="MethodKey"/>, and for head-only <c>tie_word_embeddings: false</c>), <c>model.safetensors</c>
    /// in float32 with the transformers names (<see cref="LlamaCheckpoint.HfName"/>; <c>lm_head.weight</c> only when untied,
    /// as save_pretrained writes it), and the base folder's tokenizer files and generation_config.json copied as they are.
    /// </summary>
    private static void ExportFullLlama(IPeftMethod method, LlamaModel model, string directory, string? baseModelNameOrPath)
    {
        string? baseFolder = baseModelNameOrPath is not null && Directory.Exists(baseModelNameOrPath) && LlamaCheckpoint.IsLlamaFolder(baseModelNameOrPath)
            ? baseModelNameOrPath
            : null;
        JsonObject config = JsonNode.Parse(baseFolder is null
            ? model.Config.ToJson()
            : File.ReadAllText(Path.Combine(baseFolder, ModelCheckpoint.ConfigFile), Encoding.UTF8))!.AsObject();
        config["torch_dtype"] = "float32"; // the weights are written as F32
        var options = new JsonObject();
        foreach (var (k, v) in method.Options.OrderBy(kv => kv.Key, StringComparer.Ordinal)) options[k] = v;
        config[MethodKey] = new JsonObject { ["method"] = method.Name, ["options"] = options, ["base_model_name_or_path"] = baseModelNameOrPath };

        // The model's weights (a base-subset method trains them in place), then the method's own tensors under the same
        // names, which replace them (head-only's trained lm_head.weight, also where the base has an untied one).
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in model.named_parameters()) tensors[LlamaCheckpoint.HfName(name)] = p.detach();
        foreach (var (name, t) in method.StoredTensors())
        {
            string hfName = LlamaCheckpoint.HfName(name);
            if (!tensors.ContainsKey(hfName) && !(method is HeadOnlyMethod && hfName == HeadOnlyMethod.WeightName))
            {
                throw new NotSupportedException($"{method.Name}: its tensor '{name}' is not a weight of LlamaForCausalLM; keep the method's own folder (peft_method.json).");
            }

            tensors[hfName] = t.detach();
        }

        if (method is HeadOnlyMethod)
        {
            config["tie_word_embeddings"] = false; // lm_head.weight is its own tensor
        }

        WriteJson(Path.Combine(directory, FullConfigFile), config);
        SafeTensors.Save(Path.Combine(directory, FullWeightsFile),
            tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to_type(ScalarType.Float32).contiguous())),
            new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "Orchestrator.Training" });
        if (baseFolder is not null)
        {
            foreach (string file in LlamaCopiedFiles.Where(f => File.Exists(Path.Combine(baseFolder, f))))
            {
                File.Copy(Path.Combine(baseFolder, file), Path.Combine(directory, file), overwrite: true);
            }
        }
    }

    private static IPeftMethod ImportFull(CausalLm model, string directory, string configPath, PeftContext context)
    {
        JsonNode root = JsonNode.Parse(File.ReadAllText(configPath, Encoding.UTF8)) ?? throw new FormatException($"{configPath} is empty.");
        string name = root[MethodKey]?["method"]?.GetValue<string>() ?? "finetune";
        var options = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (root[MethodKey]?["options"] is JsonObject o)
        {
            foreach (var (k, v) in o) options[k] = v?.GetValue<string>() ?? "";
        }

        IPeftMethod method = PeftRegistry.Create(name, options, $"{configPath}: {MethodKey}.options");
        Dictionary<string, Tensor> raw = SafeTensors.Load(Path.Combine(directory, FullWeightsFile), model.Device);
        try
        {
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (rawName, t) in raw)
            {
                if (model.Shape.IsLlama)
                {
                    // transformers' Llama names: model.* for the decoder, lm_head.weight beside it (a base weight when untied).
                    tensors[rawName.StartsWith("model.", StringComparison.Ordinal) ? rawName["model.".Length..] : rawName] = t;
                    continue;
                }

                string n = rawName.StartsWith("transformer.", StringComparison.Ordinal) ? rawName["transformer.".Length..] : rawName;
                if (n.EndsWith(".attn.bias", StringComparison.Ordinal) || n.EndsWith(".attn.masked_bias", StringComparison.Ordinal) ||
                    (n.StartsWith("lm_head.", StringComparison.Ordinal) && method is not HeadOnlyMethod))
                {
                    continue;
                }

                tensors[n] = IsConv1D(n) && t.dim() == 2 ? t.t() : t;
            }

            var stored = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            if (method is ProxyMethod)
            {
                foreach (var (n, t) in tensors) stored["expert." + n] = t;
            }
            else
            {
                CopyBase(model, tensors, configPath);
                foreach (var (n, t) in tensors) stored[n] = t;
            }

            ((PeftMethodBase)method).Load(model, stored, context, ignoreExtra: method is not ProxyMethod);
        }
        catch
        {
            method.Dispose();
            throw;
        }
        finally
        {
            foreach (Tensor t in raw.Values) t.Dispose();
        }

        return method;
    }

    private static void CopyBase(CausalLm model, Dictionary<string, Tensor> tensors, string source)
    {
        var problems = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!tensors.TryGetValue(name, out Tensor? t)) problems.Add($"missing tensor '{name}'");
            else if (!t.shape.SequenceEqual(p.shape)) problems.Add($"'{name}' has shape [{string.Join(", ", t.shape)}], expected [{string.Join(", ", p.shape)}]");
            else p.copy_(t);
        }

        if (problems.Count > 0)
        {
            throw new FormatException($"{source}: the checkpoint does not fit the model ({model.Shape}): {string.Join("; ", problems)}.");
        }
    }

    private static IPeftMethod ImportAdapter(CausalLm model, string directory, string configPath, PeftContext context)
    {
        JsonObject cfg = JsonNode.Parse(File.ReadAllText(configPath, Encoding.UTF8)) as JsonObject
            ?? throw new FormatException($"{configPath} is not a JSON object.");
        string type = cfg["peft_type"]?.GetValue<string>() ?? throw new FormatException($"{configPath} lacks peft_type.");
        var config = model.Shape;
        Dictionary<string, Tensor> raw = SafeTensors.Load(Path.Combine(directory, AdapterWeightsFile), model.Device);
        try
        {
            var tensors = raw.ToDictionary(kv => StripPrefix(kv.Key), kv => kv.Value, StringComparer.Ordinal);
            IHfPeftMapping mapping = PeftRegistry.HuggingFaceImporter(type) ?? throw new NotSupportedException(
                $"{configPath}: PEFT type '{type}' is not supported ({string.Join(", ", PeftRegistry.HuggingFaceTypes)} are).");
            var (name, options, stored) = mapping.Import(cfg, config, tensors, configPath);
            IPeftMethod method = PeftRegistry.Create(name, options, $"{configPath}: options");
            try
            {
                method.Load(model, stored, context);
            }
            catch
            {
                method.Dispose();
                throw;
            }

            return method;
        }
        finally
        {
            foreach (Tensor t in raw.Values) t.Dispose();
        }
    }

    private static string StripPrefix(string name)
    {
        foreach (string prefix in new[] { HfPeftFields.Gpt2TensorPrefix, HfPeftFields.LlamaTensorPrefix, "base_model.model.", "transformer." })
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal)) return name[prefix.Length..];
        }

        return name;
    }

    private static bool IsConv1D(string name) => Conv1DSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal));

    private static JsonObject Sorted(JsonObject fields)
    {
        var sorted = new JsonObject();
        foreach (var (k, v) in fields.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList())
        {
            fields.Remove(k);
            sorted[k] = v;
        }

        return sorted;
    }

    private static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), new UTF8Encoding(false));
}
