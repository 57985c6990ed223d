using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.Training.Models;

/// <summary>
/// How rotary frequencies are rescaled for longer contexts: <c>linear</c> divides every frequency by <see cref="Factor"/>;
/// <c>llama3</c> divides the low frequencies by it, keeps the high ones and blends between them (transformers'
/// <c>_compute_llama3_parameters</c>).
/// </summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFrequencyFactor = 1,
    double HighFrequencyFactor = 4,
    int OriginalPositions = 8192);

/// <summary>
/// Shape of a Llama-family decoder (Llama, Mistral without a sliding window, Qwen2): RMSNorm, rotary positions, grouped-query
/// attention with <see cref="KeyValueHeads"/> key/value heads, a SwiGLU MLP, optional q/k/v (and output) biases, a tied or
/// untied output head. Names follow transformers' config.json: <see cref="Width"/> is hidden_size, <see cref="InnerWidth"/>
/// intermediate_size, <see cref="Positions"/> max_position_embeddings.
/// </summary>
public sealed record LlamaConfig(
    int Layers,
    int Heads,
    int KeyValueHeads,
    int Width,
    int InnerWidth,
    int VocabSize,
    int Positions,
    double RmsNormEps = 1e-5,
    double RopeTheta = 10000,
    RopeScaling? RopeScaling = null,
    bool QkvBias = false,
    bool OutputBias = false,
    bool TieWordEmbeddings = false,
    int? ExplicitHeadDim = null,
    double AttentionDropout = 0,
    string ModelType = "llama",
    int? BosTokenId = null,
    IReadOnlyList<int>? EosTokenIds = null)
{
    private static readonly string[] Names = ["llama-tiny", "llama-test", "smollm2-135m", "llama-3.2-1b"];

    /// <summary>The preset names <see cref="Preset"/> knows.</summary>
    public static IReadOnlyList<string> PresetNames => Names;

    /// <summary>The <c>model_type</c> values this architecture reads.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ["llama", "mistral", "qwen2"];

    /// <summary>Width of one attention head (head_dim, default hidden_size / num_attention_heads).</summary>
    public int HeadDim => ExplicitHeadDim ?? (Heads > 0 ? Width / Heads : 0);

    /// <summary>Query heads per key/value head.</summary>
    public int QueriesPerKeyValue => KeyValueHeads > 0 ? Heads / KeyValueHeads : 0;

    /// <summary>True for a name <see cref="Preset"/> knows.</summary>
    public static bool IsPreset(string name) => Names.Contains(name.Trim().ToLowerInvariant());

    /// <summary>
    /// A named shape: <c>llama-tiny</c> (2 layers, 4 heads, 2 key/value heads, width 64, MLP 172, 256 positions, tied; the
    /// vocabulary comes from the tokenizer), <c>llama-test</c> (1 layer, 2 heads, 1 key/value head, width 32), the
    /// SmolLM2-135M shape (30 layers, width 576, 9 heads, 3 key/value heads, MLP 1536, vocabulary 49,152, tied, θ 100,000)
    /// and the Llama-3.2-1B shape (16 layers, width 2048, 32 heads, 8 key/value heads, MLP 8192, vocabulary 128,256, tied,
    /// θ 500,000, llama3 rope scaling factor 32).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown preset; the message lists the known ones.</exception>
    public static LlamaConfig Preset(string name, int? vocabSize = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        LlamaConfig config = name.Trim().ToLowerInvariant() switch
        {
            "llama-tiny" => new LlamaConfig(2, 4, 2, 64, 172, 0, 256, TieWordEmbeddings: true),
            "llama-test" => new LlamaConfig(1, 2, 1, 32, 64, 0, 128, TieWordEmbeddings: true),
            "smollm2-135m" => new LlamaConfig(30, 9, 3, 576, 1536, 49152, 8192, RopeTheta: 100000, TieWordEmbeddings: true,
                BosTokenId: 1, EosTokenIds: [2]),
            "llama-3.2-1b" => new LlamaConfig(16, 32, 8, 2048, 8192, 128256, 131072, RopeTheta: 500000,
                RopeScaling: new RopeScaling("llama3", 32, 1, 4, 8192), TieWordEmbeddings: true,
                BosTokenId: 128000, EosTokenIds: [128001, 128008, 128009]),
            _ => throw new ArgumentException(
                $"Unknown Llama preset '{name}'. Known presets: {string.Join(", ", Names)}.", nameof(name)),
        };
        return vocabSize is { } v ? config with { VocabSize = v } : config;
    }

    /// <summary>Checks the sizes and that the heads divide evenly.</summary>
    /// <exception cref="ArgumentException">The configuration is invalid; the message says why.</exception>
    public LlamaConfig Validate()
    {
        var problems = new List<string>();
        if (Layers <= 0) problems.Add($"num_hidden_layers must be positive (got {Layers})");
        if (Heads <= 0) problems.Add($"num_attention_heads must be positive (got {Heads})");
        if (KeyValueHeads <= 0) problems.Add($"num_key_value_heads must be positive (got {KeyValueHeads})");
        if (Width <= 0) problems.Add($"hidden_size must be positive (got {Width})");
        if (InnerWidth <= 0) problems.Add($"intermediate_size must be positive (got {InnerWidth})");
        if (VocabSize <= 0) problems.Add($"vocab_size must be positive (got {VocabSize}; the llama-tiny and llama-test presets take it from the tokenizer)");
        if (Positions <= 0) problems.Add($"max_position_embeddings must be positive (got {Positions})");
        if (Heads > 0 && KeyValueHeads > 0 && Heads % KeyValueHeads != 0)
        {
            problems.Add($"num_attention_heads ({Heads}) must be a multiple of num_key_value_heads ({KeyValueHeads})");
        }

        if (ExplicitHeadDim is null && Heads > 0 && Width % Heads != 0) problems.Add($"hidden_size ({Width}) must be a multiple of num_attention_heads ({Heads})");
        if (HeadDim <= 0 || HeadDim % 2 != 0) problems.Add($"head_dim must be positive and even for rotary embeddings (got {HeadDim})");
        if (!(RmsNormEps > 0)) problems.Add($"rms_norm_eps must be positive (got {RmsNormEps})");
        if (!(RopeTheta > 0)) problems.Add($"rope_theta must be positive (got {RopeTheta})");
        if (!(AttentionDropout >= 0 && AttentionDropout < 1)) problems.Add($"attention_dropout must be in [0, 1) (got {AttentionDropout})");
        if (RopeScaling is { } s)
        {
            if (s.Type is not ("linear" or "llama3")) problems.Add($"rope_scaling type '{s.Type}' is not implemented (only linear and llama3)");
            if (!(s.Factor >= 1)) problems.Add($"rope_scaling factor must be at least 1 (got {s.Factor})");
            if (s.Type == "llama3" && !(s.HighFrequencyFactor > s.LowFrequencyFactor && s.LowFrequencyFactor > 0 && s.OriginalPositions > 0))
            {
                problems.Add("llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
            }
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid Llama configuration: " + string.Join("; ", problems) + ".");
        }

        return this;
    }

    /// <summary>Number of parameters (the output head counted once when tied).</summary>
    public long ParameterCount
    {
        get
        {
            long d = Width, q = (long)Heads * HeadDim, kv = (long)KeyValueHeads * HeadDim, f = InnerWidth;
            long attention = d * q + 2 * d * kv + q * d + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? d : 0);
            long perLayer = attention + 3 * d * f + 2 * d;
            return (long)VocabSize * d * (TieWordEmbeddings ? 1 : 2) + Layers * perLayer + d;
        }
    }

    /// <summary>The inverse rotary frequencies, HeadDim/2 of them, with <see cref="RopeScaling"/> applied.</summary>
    public double[] InverseFrequencies()
    {
        int half = HeadDim / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++)
        {
            inv[i] = 1.0 / Math.Pow(RopeTheta, 2.0 * i / HeadDim);
        }

        switch (RopeScaling)
        {
            case { Type: "linear" } s:
                for (int i = 0; i < half; i++) inv[i] /= s.Factor;
                break;
            case { Type: "llama3" } s:
                double lowWavelength = s.OriginalPositions / s.LowFrequencyFactor;
                double highWavelength = s.OriginalPositions / s.HighFrequencyFactor;
                for (int i = 0; i < half; i++)
                {
                    double wavelength = 2 * Math.PI / inv[i];
                    if (wavelength > lowWavelength)
                    {
                        inv[i] /= s.Factor;
                    }
                    else if (wavelength >= highWavelength)
                    {
                        double smooth = (s.OriginalPositions / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                        inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                    }
                }

                break;
        }

        return inv;
    }

    /// <summary>A transformers config.json for this shape (<c>LlamaForCausalLM</c> or <c>Qwen2ForCausalLM</c>).</summary>
    public string ToJson()
    {
        var node = new JsonObject
        {
            ["model_type"] = ModelType,
            ["architectures"] = new JsonArray(ModelType switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" }),
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KeyValueHeads,
            ["hidden_size"] = Width,
            ["intermediate_size"] = InnerWidth,
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = Positions,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_dropout"] = AttentionDropout,
        };
        if (ExplicitHeadDim is { } hd) node["head_dim"] = hd;
        if (ModelType == "llama")
        {
            node["attention_bias"] = QkvBias;
            node["mlp_bias"] = false;
        }

        if (RopeScaling is { } s)
        {
            var scaling = new JsonObject { ["rope_type"] = s.Type, ["factor"] = s.Factor };
            if (s.Type == "llama3")
            {
                scaling["low_freq_factor"] = s.LowFrequencyFactor;
                scaling["high_freq_factor"] = s.HighFrequencyFactor;
                scaling["original_max_position_embeddings"] = s.OriginalPositions;
            }

            node["rope_scaling"] = scaling;
        }

        if (BosTokenId is { } bos) node["bos_token_id"] = bos;
        if (EosTokenIds is { Count: 1 }) node["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds is { Count: > 1 }) node["eos_token_id"] = new JsonArray(EosTokenIds.Select(e => (JsonNode?)e).ToArray());
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>True when config.json text names a model_type of this family.</summary>
    public static bool IsLlamaFamily(string json)
    {
        try
        {
            return JsonNode.Parse(json)?["model_type"]?.GetValue<string>() is { } type && ModelTypes.Contains(type);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Reads a transformers config.json of model_type llama, mistral or qwen2. Every field that would change the maths and
    /// is not implemented (another activation, an MLP bias, a sliding window shorter than the context, a rope type other than
    /// linear/llama3, a partial rotary factor, …) is refused by name.
    /// </summary>
    /// <exception cref="FormatException">Not a config of this family, or a required field is missing.</exception>
    /// <exception cref="NotSupportedException">A field asks for maths that is not implemented; the message names it.</exception>
    public static LlamaConfig FromJson(string json)
    {
        JsonNode root;
        try
        {
            root = JsonNode.Parse(json) ?? throw new FormatException("config.json is empty.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"config.json is not valid JSON ({e.Message}).", e);
        }

        string type = root["model_type"]?.GetValue<string>() ?? throw new FormatException("config.json lacks 'model_type'.");
        if (!ModelTypes.Contains(type))
        {
            throw new FormatException($"config.json has model_type '{type}'; the Llama family reads {string.Join(", ", ModelTypes)}.");
        }

        int Required(string key) => Int(root[key]) ?? throw new FormatException($"config.json lacks '{key}'.");
        double Double(string key, double fallback) => root[key] is { } n ? n.GetValue<double>() : fallback;
        bool Bool(string key, bool fallback) => root[key] is { } n ? n.GetValue<bool>() : fallback;

        void Refuse(string field, string why) =>
            throw new NotSupportedException($"config.json field '{field}' {why}; it is not implemented, so this checkpoint cannot be loaded faithfully.");

        string act = root["hidden_act"]?.GetValue<string>() ?? "silu";
        if (act != "silu") Refuse("hidden_act", $"asks for '{act}' (only silu, the SwiGLU MLP)");
        if (Bool("mlp_bias", false)) Refuse("mlp_bias", "is true (MLP projections with biases)");
        if (root["partial_rotary_factor"] is { } prf && prf.GetValue<double>() != 1.0) Refuse("partial_rotary_factor", $"is {prf.GetValue<double>().ToString(CultureInfo.InvariantCulture)}");
        int positions = Required("max_position_embeddings");
        int? window = Int(root["sliding_window"]);
        bool windowUsed = type switch
        {
            "qwen2" => Bool("use_sliding_window", false),
            _ => true,
        };
        if (windowUsed && window is { } w && w < positions)
        {
            Refuse(type == "qwen2" ? "use_sliding_window" : "sliding_window", $"asks for sliding-window attention over {w} tokens (shorter than the {positions} positions)");
        }

        if (root["layer_types"] is JsonArray layerTypes && layerTypes.Any(l => l?.GetValue<string>() != "full_attention"))
        {
            if (windowUsed && window is { } lw && lw < positions) Refuse("layer_types", "has sliding-attention layers");
        }

        foreach (string field in new[] { "attn_logit_softcapping", "final_logit_softcapping", "logits_scaling", "embedding_multiplier", "residual_multiplier", "attention_multiplier", "qk_norm" })
        {
            if (root[field] is { } value && value.GetValueKind() is not JsonValueKind.Null and not JsonValueKind.False)
            {
                Refuse(field, "is set");
            }
        }

        RopeScaling? scaling = null;
        if (root["rope_scaling"] is JsonObject rs)
        {
            string ropeType = rs["rope_type"]?.GetValue<string>() ?? rs["type"]?.GetValue<string>() ?? "default";
            switch (ropeType)
            {
                case "default":
                    break;
                case "linear":
                    scaling = new RopeScaling("linear", rs["factor"]?.GetValue<double>() ?? throw new FormatException("rope_scaling of type linear lacks 'factor'."));
                    break;
                case "llama3":
                    scaling = new RopeScaling(
                        "llama3",
                        rs["factor"]?.GetValue<double>() ?? throw new FormatException("rope_scaling of type llama3 lacks 'factor'."),
                        rs["low_freq_factor"]?.GetValue<double>() ?? throw new FormatException("rope_scaling of type llama3 lacks 'low_freq_factor'."),
                        rs["high_freq_factor"]?.GetValue<double>() ?? throw new FormatException("rope_scaling of type llama3 lacks 'high_freq_factor'."),
                        Int(rs["original_max_position_embeddings"]) ?? throw new FormatException("rope_scaling of type llama3 lacks 'original_max_position_embeddings'."));
                    break;
                default:
                    throw new NotSupportedException(
                        $"config.json field 'rope_scaling' has type '{ropeType}'; only linear and llama3 are implemented, so this checkpoint cannot be loaded faithfully.");
            }
        }

        int heads = Required("num_attention_heads");
        bool qkvBias = type == "qwen2" || Bool("attention_bias", false);
        bool outputBias = type == "llama" && Bool("attention_bias", false);
        IReadOnlyList<int>? eos = root["eos_token_id"] switch
        {
            JsonArray array => array.Select(e => Int(e) ?? 0).ToArray(),
            { } single when Int(single) is { } id => [id],
            _ => null,
        };

        return new LlamaConfig(
            Required("num_hidden_layers"),
            heads,
            Int(root["num_key_value_heads"]) ?? heads,
            Required("hidden_size"),
            Required("intermediate_size"),
            Required("vocab_size"),
            positions,
            Double("rms_norm_eps", 1e-6),
            Double("rope_theta", 10000),
            scaling,
            qkvBias,
            outputBias,
            Bool("tie_word_embeddings", false),
            Int(root["head_dim"]),
            Double("attention_dropout", 0),
            type,
            Int(root["bos_token_id"]),
            eos).Validate();
    }

    private static int? Int(JsonNode? node) => node is null || node.GetValueKind() == JsonValueKind.Null ? null : node.GetValue<int>();
}
