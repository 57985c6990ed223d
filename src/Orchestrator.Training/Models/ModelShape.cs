namespace Orchestrator.Training.Models;

/// <summary>The two architecture families a base can have.</summary>
public enum ModelFamily
{
    /// <summary>GPT-2: LayerNorm, learned positions, fused c_attn, GELU MLP, biases everywhere, tied head.</summary>
    Gpt2,

    /// <summary>Llama, Mistral, Qwen2: RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP.</summary>
    Llama,
}

/// <summary>
/// What a PEFT method needs to know about a base of either family: sizes for parameter counts and tensor shapes, and the
/// family for the module names and defaults that differ (GPT-2's <c>c_attn</c> against Llama's <c>q_proj</c> …).
/// <see cref="KeyValueHeads"/> equals <see cref="Heads"/> on GPT-2; a key or value projection is
/// <see cref="KeyValueWidth"/> wide. Converts implicitly from <see cref="Gpt2Config"/> and <see cref="LlamaConfig"/>.
/// </summary>
public sealed record ModelShape(
    ModelFamily Family,
    int Layers,
    int Width,
    int Heads,
    int KeyValueHeads,
    int HeadDim,
    int InnerWidth,
    int VocabSize,
    int Positions,
    double Dropout = 0,
    bool QkvBias = true,
    bool OutputBias = true,
    bool TiedOutput = true,
    double NormEps = 1e-5)
{
    /// <summary>Width of the key (or value) projection's output: KeyValueHeads · HeadDim.</summary>
    public int KeyValueWidth => KeyValueHeads * HeadDim;

    /// <summary>Width of the query projection's output and of o_proj's input: Heads · HeadDim.</summary>
    public int QueryWidth => Heads * HeadDim;

    /// <summary>True for the Llama family.</summary>
    public bool IsLlama => Family == ModelFamily.Llama;

    /// <summary>The family's name as users meet it (gpt2, llama).</summary>
    public string FamilyName => IsLlama ? "llama" : "gpt2";

    public static ModelShape From(Gpt2Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new ModelShape(ModelFamily.Gpt2, config.Layers, config.Width, config.Heads, config.Heads,
            config.Heads > 0 ? config.HeadDim : 0, config.InnerWidth, config.VocabSize, config.Positions, config.Dropout, NormEps: config.LayerNormEps);
    }

    public static ModelShape From(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new ModelShape(ModelFamily.Llama, config.Layers, config.Width, config.Heads, config.KeyValueHeads, config.HeadDim,
            config.InnerWidth, config.VocabSize, config.Positions, config.AttentionDropout, config.QkvBias, config.OutputBias,
            config.TieWordEmbeddings, config.RmsNormEps);
    }

    public static implicit operator ModelShape(Gpt2Config config) => From(config);

    public static implicit operator ModelShape(LlamaConfig config) => From(config);
}
