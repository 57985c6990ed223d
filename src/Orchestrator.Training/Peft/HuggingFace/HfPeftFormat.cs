using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Bbt;
using Orchestrator.Training.Peft.HeadOnly;
using Orchestrator.Training.Peft.IA3;
using Orchestrator.Training.Peft.LlamaAdapter;
using Orchestrator.Training.Peft.Lora;
using Orchestrator.Training.Peft.Prefix;
using Orchestrator.Training.Peft.PromptTuning;
using Orchestrator.Training.Peft.Proxy;
using Orchestrator.Training.Peft.Ptuning;
using Orchestrator.Training.Peft.PtuningV2;
using Orchestrator.Training.Peft.Shared;
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
/// On a Llama-family base the keys are PEFT's for Llama (<c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c>,
/// <c>….self_attn.k_proj.ia3_l</c> [out, 1], <c>….mlp.down_proj.ia3_l</c> [1, in], <c>….self_attn.adaption_prompt</c>), with
/// <c>fan_in_fan_out: false</c>; prefix-tuning writes PEFT's grouped-query layout (<c>token_dim</c> = KeyValueHeads·HeadDim,
/// <c>num_attention_heads</c> = KeyValueHeads). Methods without a PEFT type are not exported on Llama (a full Llama
/// checkpoint export is not implemented).
/// </para>
/// </summary>
public static class HfPeftFormat
{
    public const string AdapterConfigFile = "adapter_config.json";
    public const string AdapterWeightsFile = "adapter_model.safetensors";
    public const string FullConfigFile = "config.json";
    public const string FullWeightsFile = "model.safetensors";
    public const string MethodKey = "orchestrator_peft";

    private const string TensorPrefix = "base_model.model.transformer.";
    private const string LlamaTensorPrefix = "base_model.model.model.";
    private static readonly string[] Conv1DSuffixes = [".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"];

    /// <summary>The PEFT type a method exports to, or null when it is written as a full checkpoint.</summary>
    public static string? PeftTypeOf(IPeftMethod method) => method switch
    {
        LoraMethod => "LORA",
        PrefixMethodBase => "PREFIX_TUNING",
        PromptTuningMethod or BbtMethod => "PROMPT_TUNING",
        PtuningMethod => "P_TUNING",
        IA3Method => "IA3",
        LlamaAdapterMethod => "ADAPTION_PROMPT",
        _ => null,
    };

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
        if (config.IsLlama && PeftTypeOf(method) is null)
        {
            throw new NotSupportedException(
                $"{method.Name} has no PEFT type and a full Llama-family checkpoint export is not implemented; keep the method's own folder (peft_method.json).");
        }

        var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        JsonObject fields;
        var tensors = new List<KeyValuePair<string, Tensor>>();
        switch (method)
        {
            case LoraMethod lora when config.IsLlama:
                fields = LlamaLoraExport(lora, stored, tensors);
                break;
            case IA3Method ia3 when config.IsLlama:
                fields = LlamaIA3Export(config, stored, tensors);
                break;
            case LoraMethod lora:
                fields = LoraExport(lora, config, stored, tensors);
                break;
            case PrefixMethodBase prefix:
                fields = PromptLearning(config, prefix.Length, prefix: true);
                fields["encoder_hidden_size"] = prefix.HiddenSize;
                fields["prefix_projection"] = prefix.Projection;
                tensors.Add(new("prompt_embeddings", stored[PrefixMethodBase.StoredName]));
                break;
            case PromptTuningMethod prompt:
                fields = PromptLearning(config, prompt.Length);
                PromptInitFields(fields, prompt.Init, prompt.InitText, prompt.SampledVocabulary, config, tokenizerNameOrPath ?? baseModelNameOrPath);
                tensors.Add(new("prompt_embeddings", stored[PromptTuningMethod.StoredName]));
                break;
            case BbtMethod bbt:
                // The inference form of black-box tuning is a plain prompt: it imports as prompt tuning.
                fields = PromptLearning(config, bbt.Length);
                PromptInitFields(fields, bbt.Init, bbt.InitText, bbt.SampledVocabulary, config, tokenizerNameOrPath ?? baseModelNameOrPath);
                tensors.Add(new("prompt_embeddings", stored[BbtMethod.StoredName]));
                break;
            case PtuningMethod ptuning:
                fields = PromptLearning(config, ptuning.Length);
                fields["encoder_reparameterization_type"] = ptuning.Encoder.ToUpperInvariant();
                fields["encoder_hidden_size"] = ptuning.HiddenFor(config.Width);
                fields["encoder_num_layers"] = 2;
                fields["encoder_dropout"] = ptuning.EncoderDropout;
                tensors.Add(new("prompt_embeddings", stored[PtuningMethod.StoredName]));
                break;
            case IA3Method ia3:
                fields = IA3Export(ia3, config, stored, tensors);
                break;
            case LlamaAdapterMethod adaption:
                if (adaption.Gate != LlamaAdapterMethod.GateScalar)
                {
                    throw new NotSupportedException(
                        $"{LlamaAdapterMethod.MethodName} with gate={adaption.Gate} (per-head tanh gates through c_proj) has no PEFT type; export gate=scalar or use PeftCheckpoint.");
                }

                fields = new JsonObject
                {
                    ["adapter_len"] = adaption.Length,
                    ["adapter_layers"] = adaption.LayersFor(config),
                    ["target_modules"] = config.IsLlama ? "self_attn" : "attn",
                };
                foreach (var (name, t) in stored) tensors.Add(new((config.IsLlama ? LlamaTensorPrefix : TensorPrefix) + name, t));
                break;
            default:
                ExportFull(method, model, directory, baseModelNameOrPath);
                return;
        }

        fields["peft_type"] = PeftTypeOf(method);
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
    /// loads such a folder as a plain GPT2LMHeadModel and silently drops tensors it does not know: adapters' modules (the
    /// folder would evaluate as the base model), a head-only bias (GPT-2's lm_head has none) and proxy-tuning's decoding-time
    /// mixture (the folder would be the expert alone). The AdapterHub <c>adapters</c> format is not written by this tool.
    /// </summary>
    public static string? FullCheckpointRefusal(IPeftMethod method)
    {
        ArgumentNullException.ThrowIfNull(method);
        const string Keep = "keep the cell's own checkpoint (PeftCheckpoint: orchestrator generate --adapter and reproduce read it)";
        return method switch
        {
            Adapter.AdapterMethod or AdapterHoulsby.AdapterHoulsbyMethod or AdapterParallel.AdapterParallelMethod or AdapterFusion.AdapterFusionMethod =>
                $"{method.Name} has no Hugging Face PEFT type, and as a full GPT-2 checkpoint transformers would drop its adapter tensors without a word and " +
                $"evaluate the base model; the AdapterHub 'adapters' format is not written by this tool: {Keep}",
            HeadOnlyMethod { Bias: true } =>
                $"head-only with bias=true: transformers' GPT-2 output layer has no bias, so a full checkpoint would load without it; export bias=false or {Keep}",
            ProxyMethod =>
                $"proxy-tuning mixes base, expert and anti-expert logits at decoding time; a full checkpoint would load as the expert alone: {Keep}",
            _ => null,
        };
    }

    /// <summary>
    /// PEFT's prompt initialisation fields, labelled only as PEFT would reproduce them: TEXT with <c>' ' + text</c> (PEFT
    /// tokenises the text as given and adds no special tokens for GPT-2, so it gets our ids) and the tokenizer, and only when
    /// a tokenizer is named (PEFT refuses TEXT without one); SAMPLE_VOCAB only when the sample covered every embedding row,
    /// as PEFT's does; RANDOM otherwise. PEFT reads the field only to initialise a new prompt; the trained prompt is the weights.
    /// </summary>
    private static void PromptInitFields(JsonObject fields, string init, string? initText, int? sampledVocabulary, ModelShape config, string? tokenizer)
    {
        bool text = init == "text" && initText is not null && !string.IsNullOrEmpty(tokenizer);
        bool wholeVocabulary = init == "vocab" && sampledVocabulary == config.VocabSize;
        fields["prompt_tuning_init"] = text ? "TEXT" : wholeVocabulary ? "SAMPLE_VOCAB" : "RANDOM";
        fields["prompt_tuning_init_text"] = text ? " " + initText : null;
        fields["tokenizer_name_or_path"] = text ? tokenizer : null;
        fields["tokenizer_kwargs"] = null;
    }

    /// <summary>
    /// PEFT's prompt-learning fields. For prefix-tuning under grouped-query attention PEFT stores one key/value per key/value
    /// head: token_dim = KeyValueHeads·HeadDim and num_attention_heads = KeyValueHeads (equal to Width and Heads on GPT-2).
    /// </summary>
    private static JsonObject PromptLearning(ModelShape config, int virtualTokens, bool prefix = false) => new()
    {
        ["num_virtual_tokens"] = virtualTokens,
        ["token_dim"] = prefix ? config.KeyValueWidth : config.Width,
        ["num_transformer_submodules"] = 1,
        ["num_attention_heads"] = prefix ? config.KeyValueHeads : config.Heads,
        ["num_layers"] = config.Layers,
        ["modules_to_save"] = null,
    };

    private static JsonObject LlamaLoraExport(LoraMethod lora, Dictionary<string, Tensor> stored, List<KeyValuePair<string, Tensor>> tensors)
    {
        foreach (var (name, t) in stored) tensors.Add(new(LlamaTensorPrefix + name, t)); // layers.{i}.self_attn.q_proj.lora_A.weight …
        var targets = new JsonArray();
        foreach (string module in lora.LlamaTargets) targets.Add(module);
        return LoraConfig(lora.Rank, lora.Alpha, lora.Dropout, targets, fanInFanOut: false);
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

    private static JsonObject LlamaIA3Export(ModelShape config, Dictionary<string, Tensor> stored, List<KeyValuePair<string, Tensor>> tensors)
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

    private static JsonObject LoraExport(LoraMethod lora, ModelShape config, Dictionary<string, Tensor> stored, List<KeyValuePair<string, Tensor>> tensors)
    {
        long d = config.Width;
        int r = lora.Rank;
        double alpha = lora.Alpha;
        for (int i = 0; i < config.Layers; i++)
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

            tensors.Add(new(TensorPrefix + prefix + "lora_A.weight", a));
            tensors.Add(new(TensorPrefix + prefix + "lora_B.weight", b));
        }

        bool qv = lora.Targets == LoraMethod.TargetsQv;
        return LoraConfig(qv ? 2 * r : r, qv ? 2 * alpha : alpha, lora.Dropout, new JsonArray("c_attn"), fanInFanOut: true);
    }

    private static JsonObject IA3Export(IA3Method ia3, ModelShape config, Dictionary<string, Tensor> stored, List<KeyValuePair<string, Tensor>> tensors)
    {
        long d = config.Width;
        for (int i = 0; i < config.Layers; i++)
        {
            Tensor attention = stored[$"h.{i}.attn.c_attn.ia3_l"];
            if (ia3.Targets == IA3Method.TargetsKv)
            {
                attention = cat([ones(d, device: attention.device), attention], 0);
            }

            tensors.Add(new($"{TensorPrefix}h.{i}.attn.c_attn.ia3_l", attention.reshape(3 * d, 1)));
            tensors.Add(new($"{TensorPrefix}h.{i}.mlp.c_proj.ia3_l", stored[$"h.{i}.mlp.c_proj.ia3_l"].reshape(1, 4 * d)));
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
            var (name, options, stored) = type switch
            {
                "LORA" => LoraImport(cfg, config, tensors, configPath),
                "PREFIX_TUNING" => PrefixImport(cfg, config, tensors, configPath),
                "PROMPT_TUNING" => PromptImport(cfg, config, tensors, configPath),
                "P_TUNING" => PtuningImport(cfg, config, tensors, configPath),
                "IA3" => IA3Import(cfg, config, tensors, configPath),
                "ADAPTION_PROMPT" => AdaptionImport(cfg, config, tensors, configPath),
                _ => throw new NotSupportedException($"{configPath}: PEFT type '{type}' is not supported (LORA, PREFIX_TUNING, PROMPT_TUNING, P_TUNING, IA3, ADAPTION_PROMPT are)."),
            };
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

    private static (string, Dictionary<string, string>, Dictionary<string, Tensor>) LoraImport(
        JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
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
            ["r"] = r.ToString(CultureInfo.InvariantCulture),
            ["alpha"] = Number(cfg["lora_alpha"] ?? JsonValue.Create(8)),
            ["dropout"] = Number(cfg["lora_dropout"] ?? JsonValue.Create(0.0)),
            ["targets"] = config.IsLlama ? string.Join(",", targets) : LoraMethod.TargetsCAttn,
        };
        return (LoraMethod.MethodName, options, tensors);
    }

    private static (string, Dictionary<string, string>, Dictionary<string, Tensor>) PrefixImport(
        JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int p = CheckPromptLearning(cfg, config, path);
        bool projection = cfg["prefix_projection"]?.GetValue<bool>() ?? false;
        var options = new Dictionary<string, string> { ["length"] = p.ToString(CultureInfo.InvariantCulture) };
        if (projection && cfg["encoder_hidden_size"] is JsonNode h && h.GetValueKind() == JsonValueKind.Number)
        {
            options["hidden"] = h.GetValue<int>().ToString(CultureInfo.InvariantCulture);
        }

        return (projection ? PrefixMethod.MethodName : PtuningV2Method.MethodName, options, PromptEmbeddings(tensors, PrefixMethodBase.StoredName, path));
    }

    private static (string, Dictionary<string, string>, Dictionary<string, Tensor>) PromptImport(
        JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int p = CheckPromptLearning(cfg, config, path);
        string init = cfg["prompt_tuning_init"]?.GetValue<string>() ?? "RANDOM";
        var options = new Dictionary<string, string> { ["length"] = p.ToString(CultureInfo.InvariantCulture) };
        switch (init)
        {
            case "TEXT":
                options["init"] = "text";
                // Our init_text gets a leading space before tokenising; PEFT tokenises the text as written (our exports
                // write ' ' + text), so one leading space is ours.
                string text = cfg["prompt_tuning_init_text"]?.GetValue<string>() ?? "";
                options["init_text"] = text.StartsWith(' ') ? text[1..] : text;
                break;
            case "SAMPLE_VOCAB":
                options["init"] = "vocab";
                break;
            default:
                options["init"] = "normal";
                break;
        }

        return (PromptTuningMethod.MethodName, options, PromptEmbeddings(tensors, PromptTuningMethod.StoredName, path));
    }

    private static (string, Dictionary<string, string>, Dictionary<string, Tensor>) PtuningImport(
        JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int p = CheckPromptLearning(cfg, config, path);
        string encoder = (cfg["encoder_reparameterization_type"]?.GetValue<string>() ?? "MLP").ToLowerInvariant();
        var options = new Dictionary<string, string> { ["length"] = p.ToString(CultureInfo.InvariantCulture), ["encoder"] = encoder };
        if (cfg["encoder_hidden_size"] is JsonNode h && h.GetValueKind() == JsonValueKind.Number)
        {
            options["hidden"] = h.GetValue<int>().ToString(CultureInfo.InvariantCulture);
        }

        if (cfg["encoder_dropout"] is JsonNode dr && dr.GetValueKind() == JsonValueKind.Number)
        {
            options["dropout"] = Number(dr);
        }

        return (PtuningMethod.MethodName, options, PromptEmbeddings(tensors, PtuningMethod.StoredName, path));
    }

    private static (string, Dictionary<string, string>, Dictionary<string, Tensor>) IA3Import(
        JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
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
            return (IA3Method.MethodName, new Dictionary<string, string> { ["targets"] = keyValue ? IA3Method.TargetsAuto : IA3Method.TargetsCAttn }, flat);
        }

        if (!targets.SequenceEqual(["c_attn", "mlp.c_proj"]) || feedforward.Count != 1 || feedforward[0] != "mlp.c_proj")
        {
            throw new NotSupportedException(
                $"{path}: IA3 target_modules [{string.Join(", ", targets)}] / feedforward_modules [{string.Join(", ", feedforward)}]; only c_attn + mlp.c_proj (feed-forward) is supported.");
        }

        long d = config.Width;
        var stored = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            stored[name] = name.EndsWith("attn.c_attn.ia3_l", StringComparison.Ordinal) || name.EndsWith("mlp.c_proj.ia3_l", StringComparison.Ordinal)
                ? t.reshape(-1)
                : t;
        }

        return (IA3Method.MethodName, new Dictionary<string, string> { ["targets"] = IA3Method.TargetsCAttn }, stored);
    }

    private static (string, Dictionary<string, string>, Dictionary<string, Tensor>) AdaptionImport(
        JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int length = Required(cfg, "adapter_len", path).GetValue<int>();
        int layers = Required(cfg, "adapter_layers", path).GetValue<int>();
        var options = new Dictionary<string, string>
        {
            ["length"] = length.ToString(CultureInfo.InvariantCulture),
            ["layers"] = layers.ToString(CultureInfo.InvariantCulture),
            ["gate"] = LlamaAdapterMethod.GateScalar,
        };
        return (LlamaAdapterMethod.MethodName, options, tensors);
    }

    private static int CheckPromptLearning(JsonObject cfg, ModelShape config, string path)
    {
        var problems = new List<string>();
        void Check(string key, int expected)
        {
            if (cfg[key] is JsonNode n && n.GetValueKind() == JsonValueKind.Number && n.GetValue<int>() != expected)
            {
                problems.Add($"{key} is {n.GetValue<int>()}, the model has {expected}");
            }
        }

        // Prefix-tuning under grouped-query attention: PEFT stores token_dim = KeyValueHeads·HeadDim, KeyValueHeads heads.
        bool prefix = cfg["peft_type"]?.GetValue<string>() == "PREFIX_TUNING";
        Check("token_dim", prefix ? config.KeyValueWidth : config.Width);
        Check("num_layers", config.Layers);
        Check("num_attention_heads", prefix ? config.KeyValueHeads : config.Heads);
        Check("num_transformer_submodules", 1);
        if (problems.Count > 0) throw new FormatException($"{path}: {string.Join("; ", problems)}.");
        return Required(cfg, "num_virtual_tokens", path).GetValue<int>();
    }

    private static Dictionary<string, Tensor> PromptEmbeddings(Dictionary<string, Tensor> tensors, string storedName, string path)
    {
        if (!tensors.TryGetValue("prompt_embeddings", out Tensor? t))
        {
            throw new FormatException($"{path}: the weights lack 'prompt_embeddings' (found: {string.Join(", ", tensors.Keys)}).");
        }

        return new Dictionary<string, Tensor>(StringComparer.Ordinal) { [storedName] = t };
    }

    private static string StripPrefix(string name)
    {
        foreach (string prefix in new[] { TensorPrefix, LlamaTensorPrefix, "base_model.model.", "transformer." })
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal)) return name[prefix.Length..];
        }

        return name;
    }

    private static JsonNode Required(JsonObject cfg, string key, string path) =>
        cfg[key] is JsonNode n && n.GetValueKind() != JsonValueKind.Null ? n : throw new FormatException($"{path} lacks '{key}'.");

    private static string Number(JsonNode node) => node.GetValue<double>().ToString("R", CultureInfo.InvariantCulture);

    private static List<string> Strings(JsonNode? node) => node switch
    {
        null => [],
        JsonArray a => a.Select(x => x?.GetValue<string>() ?? "").ToList(),
        _ when node.GetValueKind() == JsonValueKind.String => [node.GetValue<string>()],
        _ => [],
    };

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
