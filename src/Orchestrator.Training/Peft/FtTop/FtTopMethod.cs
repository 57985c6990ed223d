using System.Globalization;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;

namespace Orchestrator.Training.Peft.FtTop;

/// <summary>
/// FT-top-k (Li &amp; Liang's "FT-top2"): fine-tunes the top <c>layers</c> blocks and <c>ln_f</c>; with
/// <c>embeddings=true</c> also <c>wte</c> (tied to the LM head), as the reference code's <c>finetune-top</c> mode does.
/// Default without wte: 25,194,496 parameters on gpt2-medium (7.1%).
/// </summary>
public sealed class FtTopMethod : BaseSubsetMethod
{
    public const string MethodName = "ft-top2";

    private FtTopMethod(PeftOptionReader options) : base(options)
    {
        Layers = options.Int("layers", 2, "number of top transformer blocks that train (k)");
        Embeddings = options.Bool("embeddings", false, "also train the token embeddings wte (tied to the LM head), as the reference code's finetune-top mode");
    }

    public int Layers { get; }

    public bool Embeddings { get; }

    public static FtTopMethod Create(PeftOptionReader options) => new(options);

    protected override void Validate(ModelShape config)
    {
        if (Layers > config.Layers)
        {
            throw new ArgumentException($"{MethodName}: layers={Layers} exceeds the model's {config.Layers} layers.");
        }
    }

    protected override bool Selects(string name, ModelShape config)
    {
        if (config.IsLlama)
        {
            // Llama: the top k layers and the final norm; embed_tokens (and an untied lm_head) only with embeddings=true.
            if (name == "norm.weight") return true;
            if (name is "embed_tokens.weight" or "lm_head.weight") return Embeddings;
            if (!name.StartsWith("layers.", StringComparison.Ordinal)) return false;
            int end = name.IndexOf('.', 7);
            return int.Parse(name.AsSpan(7, end - 7), CultureInfo.InvariantCulture) >= config.Layers - Layers;
        }

        if (name.StartsWith("ln_f.", StringComparison.Ordinal)) return true;
        if (name == "wte.weight") return Embeddings;
        if (name.StartsWith("h.", StringComparison.Ordinal))
        {
            int dot = name.IndexOf('.', 2);
            int layer = int.Parse(name.AsSpan(2, dot - 2), CultureInfo.InvariantCulture);
            return layer >= config.Layers - Layers;
        }

        return false;
    }
}
