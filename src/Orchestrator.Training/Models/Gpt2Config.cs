using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.Training.Models;

/// <summary>
/// Shape of a GPT-2 model. <see cref="Width"/> is HF's n_embd, <see cref="Positions"/> n_positions, <see cref="Layers"/> n_layer,
/// <see cref="Heads"/> n_head. <see cref="Dropout"/> is used for the embedding, attention and residual dropout alike.
/// </summary>
public sealed record Gpt2Config(
    int Layers,
    int Heads,
    int Width,
    int VocabSize,
    int Positions,
    double Dropout = 0,
    double LayerNormEps = 1e-5)
{
    /// <summary>transformers' GPT2Config default for resid_pdrop, embd_pdrop and attn_pdrop.</summary>
    public const double TransformersDefaultDropout = 0.1;

    private static readonly string[] Names = ["gpt2", "gpt2-medium", "gpt2-large", "small", "tiny", "test"];

    /// <summary>The preset names <see cref="Preset"/> knows.</summary>
    public static IReadOnlyList<string> PresetNames => Names;

    /// <summary>
    /// Hugging Face's <c>scale_attn_weights</c>: attention scores are divided by √<see cref="HeadDim"/> (true, GPT-2's
    /// default). False leaves them unscaled.
    /// </summary>
    public bool ScaleAttentionWeights { get; init; } = true;

    /// <summary>
    /// Hugging Face's <c>scale_attn_by_inverse_layer_idx</c>: the scores of block i (0-based) are further divided by i + 1.
    /// </summary>
    public bool ScaleByInverseLayerIndex { get; init; }

    /// <summary>
    /// The factor by which the attention scores q·k of block <paramref name="layer"/> (0-based) are multiplied before the
    /// softmax: 1/√HeadDim unless <see cref="ScaleAttentionWeights"/> is false, times 1/(layer + 1) with
    /// <see cref="ScaleByInverseLayerIndex"/>.
    /// </summary>
    public double AttentionScale(int layer) =>
        (ScaleAttentionWeights ? 1.0 / Math.Sqrt(HeadDim) : 1.0) * (ScaleByInverseLayerIndex ? 1.0 / (layer + 1) : 1.0);

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => Width / Heads;

    /// <summary>Width of the MLP's hidden layer (4 × <see cref="Width"/>, as in GPT-2).</summary>
    public int InnerWidth => 4 * Width;

    /// <summary>
    /// A named configuration: <c>gpt2</c> (12 layers, 12 heads, 768 wide, vocab 50257, 1024 positions), <c>gpt2-medium</c>
    /// (24/16/1024), <c>gpt2-large</c> (36/20/1280), <c>tiny</c> (2 layers, 2 heads, 64 wide, 256 positions) and <c>test</c>
    /// (1 layer, 2 heads, 32 wide, 128 positions). The GPT-2 presets have GPT-2's vocabulary size unless
    /// <paramref name="vocabSize"/> overrides it (e.g. 50258 with an added pad token). <c>tiny</c> and <c>test</c> take their
    /// vocabulary from the tokenizer: pass <paramref name="vocabSize"/>, or set it later with <c>with { VocabSize = … }</c>
    /// (until then <see cref="VocabSize"/> is 0 and <see cref="Validate"/> fails).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown preset; the message lists the known ones.</exception>
    public static Gpt2Config Preset(string name, int? vocabSize = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        Gpt2Config config = name.Trim().ToLowerInvariant() switch
        {
            "gpt2" => new Gpt2Config(12, 12, 768, 50257, 1024),
            "gpt2-medium" => new Gpt2Config(24, 16, 1024, 50257, 1024),
            "gpt2-large" => new Gpt2Config(36, 20, 1280, 50257, 1024),
            "small" => new Gpt2Config(4, 4, 128, 0, 512),
            "tiny" => new Gpt2Config(2, 2, 64, 0, 256),
            "test" => new Gpt2Config(1, 2, 32, 0, 128),
            _ => throw new ArgumentException(
                $"Unknown model preset '{name}'. Known presets: {string.Join(", ", Names)}.", nameof(name)),
        };
        return vocabSize is { } v ? config with { VocabSize = v } : config;
    }

    /// <summary>Checks that all sizes are positive, Width is a multiple of Heads and the rates are in range.</summary>
    /// <exception cref="ArgumentException">The configuration is invalid; the message says why.</exception>
    public Gpt2Config Validate()
    {
        var problems = new List<string>();
        if (Layers <= 0) problems.Add($"Layers must be positive (got {Layers})");
        if (Heads <= 0) problems.Add($"Heads must be positive (got {Heads})");
        if (Width <= 0) problems.Add($"Width must be positive (got {Width})");
        if (VocabSize <= 0) problems.Add($"VocabSize must be positive (got {VocabSize}; the tiny and test presets take it from the tokenizer)");
        if (Positions <= 0) problems.Add($"Positions must be positive (got {Positions})");
        if (Heads > 0 && Width > 0 && Width % Heads != 0) problems.Add($"Width ({Width}) must be a multiple of Heads ({Heads})");
        if (!(Dropout >= 0 && Dropout < 1)) problems.Add($"Dropout must be in [0, 1) (got {Dropout})");
        if (!(LayerNormEps > 0)) problems.Add($"LayerNormEps must be positive (got {LayerNormEps})");
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid GPT-2 configuration: " + string.Join("; ", problems) + ".");
        }

        return this;
    }

    /// <summary>Number of parameters (token and position embeddings included, the tied LM head not counted twice).</summary>
    public long ParameterCount
    {
        get
        {
            long d = Width;
            long perLayer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
            return (long)VocabSize * d + (long)Positions * d + Layers * perLayer + 2 * d;
        }
    }

    /// <summary>Hugging Face style config.json (model_type gpt2, n_layer, n_head, n_embd, …, activation gelu_new).</summary>
    public string ToJson()
    {
        var node = new JsonObject
        {
            ["model_type"] = "gpt2",
            ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["n_layer"] = Layers,
            ["n_head"] = Heads,
            ["n_embd"] = Width,
            ["vocab_size"] = VocabSize,
            ["n_positions"] = Positions,
            ["n_ctx"] = Positions,
            ["activation_function"] = "gelu_new",
            ["layer_norm_epsilon"] = LayerNormEps,
            ["resid_pdrop"] = Dropout,
            ["embd_pdrop"] = Dropout,
            ["attn_pdrop"] = Dropout,
            ["initializer_range"] = 0.02,
            ["tie_word_embeddings"] = true,
        };
        if (!ScaleAttentionWeights) node["scale_attn_weights"] = false;
        if (ScaleByInverseLayerIndex) node["scale_attn_by_inverse_layer_idx"] = true;
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// Reads a Hugging Face GPT-2 config.json (or one written by <see cref="ToJson"/>). A missing <c>resid_pdrop</c> takes
    /// transformers' default 0.1 and a missing epsilon 1e-5; differing dropout rates are not supported and the residual rate
    /// wins (a cell's <c>training.base_dropout</c> replaces it anyway). The fields that change the attention maths are read:
    /// <c>scale_attn_weights</c> and <c>scale_attn_by_inverse_layer_idx</c> are implemented; <c>reorder_and_upcast_attn</c>
    /// only changes the order and precision of half-precision arithmetic, and every computation here is float32, so it is
    /// the same maths and is accepted.
    /// </summary>
    public static Gpt2Config FromJson(string json)
    {
        JsonNode root = JsonNode.Parse(json) ?? throw new FormatException("config.json is empty.");
        if (root["model_type"]?.GetValue<string>() is { } type && type != "gpt2")
        {
            throw new FormatException(LlamaConfig.ModelTypes.Contains(type)
                ? $"config.json has model_type '{type}', a Llama-family base: `orchestrator generate` runs it, but a Llama-family folder as a training base is not implemented yet (methods train on the Llama presets: {string.Join(", ", LlamaConfig.PresetNames)})."
                : $"config.json has model_type '{type}', expected 'gpt2'.");
        }

        if (root["activation_function"]?.GetValue<string>() is { } act && act != "gelu_new")
        {
            throw new NotSupportedException($"config.json asks for activation '{act}'; only gelu_new (GPT-2's tanh GELU) is implemented.");
        }

        int Required(string key) => root[key]?.GetValue<int>() ?? throw new FormatException($"config.json lacks '{key}'.");
        double Optional(string key, double fallback) => root[key]?.GetValue<double>() ?? fallback;
        bool Flag(string key, bool fallback) => root[key] switch
        {
            null => fallback,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            var other => throw new FormatException($"config.json: '{key}' must be true or false, got {other.ToJsonString()}."),
        };

        return new Gpt2Config(
            Required("n_layer"),
            Required("n_head"),
            Required("n_embd"),
            Required("vocab_size"),
            Required("n_positions"),
            Optional("resid_pdrop", TransformersDefaultDropout),
            Optional("layer_norm_epsilon", 1e-5))
        {
            ScaleAttentionWeights = Flag("scale_attn_weights", true),
            ScaleByInverseLayerIndex = Flag("scale_attn_by_inverse_layer_idx", false),
        }.Validate();
    }
}
