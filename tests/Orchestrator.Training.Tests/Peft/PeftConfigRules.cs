using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>
/// What Hugging Face PEFT checks when it builds a config from <c>adapter_config.json</c> (<c>cls(**json)</c> on the
/// dataclass of its <c>peft_type</c>, then <c>__post_init__</c>), re-implemented here from PEFT's config classes so that a
/// test can tell whether PEFT would load a file our exporter wrote, independently of our own reader. Strict where PEFT
/// versions differ: a key the dataclass does not declare is an error (older PEFT raised TypeError; newer warns and drops it).
/// </summary>
internal static class PeftConfigRules
{
    private static readonly string[] TaskTypes = ["SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"];

    private static readonly string[] Common = ["peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping"];

    private static readonly string[] PromptLearning =
        [.. Common, "num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers", "modules_to_save"];

    private static readonly Dictionary<string, string[]> Fields = new(StringComparer.Ordinal)
    {
        ["LORA"] =
        [
            .. Common, "r", "target_modules", "exclude_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora",
            "modules_to_save", "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
            "megatron_config", "megatron_core", "loftq_config", "use_dora", "layer_replication", "lora_bias",
        ],
        ["PREFIX_TUNING"] = [.. PromptLearning, "encoder_hidden_size", "prefix_projection"],
        ["PROMPT_TUNING"] = [.. PromptLearning, "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_name_or_path", "tokenizer_kwargs"],
        ["P_TUNING"] = [.. PromptLearning, "encoder_reparameterization_type", "encoder_hidden_size", "encoder_num_layers", "encoder_dropout"],
        ["IA3"] = [.. Common, "target_modules", "exclude_modules", "feedforward_modules", "fan_in_fan_out", "modules_to_save", "init_ia3_weights"],
        ["ADAPTION_PROMPT"] = [.. Common, "target_modules", "adapter_len", "adapter_layers"],
    };

    /// <summary>Every problem PEFT would raise (or, for unknown keys, warn about) for this adapter_config.json; empty when it loads.</summary>
    public static IReadOnlyList<string> Problems(string json)
    {
        var problems = new List<string>();
        if (JsonNode.Parse(json) is not JsonObject cfg)
        {
            return ["not a JSON object"];
        }

        string? type = Text(cfg, "peft_type", problems);
        if (type is null || !Fields.TryGetValue(type, out var fields))
        {
            problems.Add($"peft_type '{type}' is not a PEFT type this file can be (PEFT_TYPE_TO_CONFIG_MAPPING)");
            return problems;
        }

        foreach (var (key, _) in cfg)
        {
            if (!fields.Contains(key, StringComparer.Ordinal)) problems.Add($"{type}Config has no field '{key}'");
        }

        // PeftConfig.__post_init__: a task type must be one of TaskType.
        if (Text(cfg, "task_type", problems) is { } task && !TaskTypes.Contains(task, StringComparer.Ordinal))
        {
            problems.Add($"Invalid task type: '{task}'");
        }

        Bool(cfg, "inference_mode", problems);
        Text(cfg, "base_model_name_or_path", problems);
        Text(cfg, "revision", problems);
        switch (type)
        {
            case "LORA":
                Lora(cfg, problems);
                break;
            case "IA3":
                Ia3(cfg, problems);
                break;
            case "PREFIX_TUNING":
                PromptLearningFields(cfg, problems);
                Int(cfg, "encoder_hidden_size", problems);
                Bool(cfg, "prefix_projection", problems);
                break;
            case "PROMPT_TUNING":
                PromptLearningFields(cfg, problems);
                PromptTuning(cfg, problems);
                break;
            case "P_TUNING":
                PromptLearningFields(cfg, problems);
                if (Text(cfg, "encoder_reparameterization_type", problems) is { } encoder && encoder is not ("MLP" or "LSTM"))
                {
                    problems.Add($"'{encoder}' is not a valid PromptEncoderReparameterizationType");
                }

                Int(cfg, "encoder_hidden_size", problems);
                Int(cfg, "encoder_num_layers", problems);
                Number(cfg, "encoder_dropout", problems);
                break;
            case "ADAPTION_PROMPT":
                // AdaptionPromptConfig: a module name (str), the prompt length and the number of adapted layers.
                if (cfg["target_modules"] is not JsonValue v || v.GetValueKind() != JsonValueKind.String) problems.Add("target_modules must be a module name (str)");
                if (Int(cfg, "adapter_len", problems) is <= 0) problems.Add("adapter_len must be positive");
                if (Int(cfg, "adapter_layers", problems) is <= 0) problems.Add("adapter_layers must be positive");
                break;
        }

        return problems;
    }

    private static void PromptLearningFields(JsonObject cfg, List<string> problems)
    {
        if (Int(cfg, "num_virtual_tokens", problems) is null or <= 0) problems.Add("num_virtual_tokens must be a positive integer");
        foreach (var key in new[] { "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers" }) Int(cfg, key, problems);
    }

    /// <summary>PromptTuningConfig.__post_init__ and its PromptTuningInit enum.</summary>
    private static void PromptTuning(JsonObject cfg, List<string> problems)
    {
        string init = Text(cfg, "prompt_tuning_init", problems) ?? "RANDOM";
        if (init is not ("TEXT" or "SAMPLE_VOCAB" or "RANDOM")) problems.Add($"'{init}' is not a valid PromptTuningInit");
        string? tokenizer = Text(cfg, "tokenizer_name_or_path", problems);
        string? text = Text(cfg, "prompt_tuning_init_text", problems);
        if (init == "TEXT" && string.IsNullOrEmpty(tokenizer)) problems.Add($"When prompt_tuning_init='TEXT', tokenizer_name_or_path can't be {tokenizer ?? "None"}.");
        if (init == "TEXT" && text is null) problems.Add("When prompt_tuning_init='TEXT', prompt_tuning_init_text can't be None.");
        if (cfg["tokenizer_kwargs"] is JsonObject { Count: > 0 } && init != "TEXT") problems.Add("tokenizer_kwargs only valid when using prompt_tuning_init='TEXT'.");
    }

    /// <summary>LoraConfig.__post_init__ and the values LoraModel accepts.</summary>
    private static void Lora(JsonObject cfg, List<string> problems)
    {
        if (Int(cfg, "r", problems) is null or <= 0) problems.Add("`r` should be a positive integer value");
        Number(cfg, "lora_alpha", problems);
        Number(cfg, "lora_dropout", problems);
        Bool(cfg, "fan_in_fan_out", problems);
        Bool(cfg, "use_rslora", problems);
        bool targetsIsString = cfg["target_modules"] is JsonValue t && t.GetValueKind() == JsonValueKind.String;
        if (!targetsIsString && cfg["target_modules"] is not (JsonArray or null)) problems.Add("target_modules must be a list or a str");
        bool hasLayers = cfg["layers_to_transform"] is not null;
        bool hasPattern = cfg["layers_pattern"] is JsonValue p && p.GetValueKind() == JsonValueKind.String && p.GetValue<string>().Length > 0;
        if (targetsIsString && hasLayers) problems.Add("`layers_to_transform` cannot be used when `target_modules` is a str.");
        if (targetsIsString && hasPattern) problems.Add("`layers_pattern` cannot be used when `target_modules` is a str.");
        if (hasPattern && !hasLayers) problems.Add("When `layers_pattern` is specified, `layers_to_transform` must also be specified.");
        if (Text(cfg, "bias", problems) is { } bias && bias is not ("none" or "all" or "lora_only")) problems.Add($"Requested bias: {bias}, is not implemented.");
        switch (cfg["init_lora_weights"])
        {
            case null:
                break;
            case JsonValue b when b.GetValueKind() is JsonValueKind.True or JsonValueKind.False:
                break;
            case JsonValue s when s.GetValueKind() == JsonValueKind.String &&
                                  (s.GetValue<string>() is "gaussian" or "eva" or "olora" or "pissa" or "corda" or "loftq" || s.GetValue<string>().StartsWith("pissa_niter_", StringComparison.Ordinal)):
                if (s.GetValue<string>() == "loftq" && cfg["loftq_config"] is not JsonObject { Count: > 0 }) problems.Add("`loftq_config` must be specified when `init_lora_weights` is 'loftq'.");
                break;
            default:
                problems.Add($"Unknown initialization init_lora_weights={cfg["init_lora_weights"]!.ToJsonString()}");
                break;
        }

        if (cfg["rank_pattern"] is not (JsonObject or null)) problems.Add("rank_pattern must be a dict");
        if (cfg["alpha_pattern"] is not (JsonObject or null)) problems.Add("alpha_pattern must be a dict");
    }

    /// <summary>IA3Config.__post_init__: feed-forward modules must be among the target modules when both are lists.</summary>
    private static void Ia3(JsonObject cfg, List<string> problems)
    {
        Bool(cfg, "fan_in_fan_out", problems);
        Bool(cfg, "init_ia3_weights", problems);
        if (cfg["target_modules"] is JsonArray targets && cfg["feedforward_modules"] is JsonArray feedForward)
        {
            var t = targets.Select(x => x?.GetValue<string>()).ToHashSet();
            if (!feedForward.Select(x => x?.GetValue<string>()).All(t.Contains)) problems.Add("`feedforward_modules` should be a subset of `target_modules`");
        }
    }

    private static string? Text(JsonObject cfg, string key, List<string> problems)
    {
        switch (cfg[key])
        {
            case null:
                return null;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return v.GetValue<string>();
            default:
                problems.Add($"{key} must be a str or None, got {cfg[key]!.ToJsonString()}");
                return null;
        }
    }

    private static int? Int(JsonObject cfg, string key, List<string> problems)
    {
        switch (cfg[key])
        {
            case null:
                return null;
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i):
                return i;
            default:
                problems.Add($"{key} must be an int, got {cfg[key]!.ToJsonString()}");
                return null;
        }
    }

    private static void Number(JsonObject cfg, string key, List<string> problems)
    {
        if (cfg[key] is not (null or JsonValue { } )) problems.Add($"{key} must be a number");
        else if (cfg[key] is JsonValue v && v.GetValueKind() != JsonValueKind.Number) problems.Add($"{key} must be a number, got {v.ToJsonString()}");
    }

    private static void Bool(JsonObject cfg, string key, List<string> problems)
    {
        if (cfg[key] is JsonNode n && (n is not JsonValue v || v.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False)))
        {
            problems.Add($"{key} must be a bool, got {n.ToJsonString()}");
        }
    }
}
