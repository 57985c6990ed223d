namespace Orchestrator.Evaluation;

/// <summary>sacreBLEU's <c>smooth_method</c>.</summary>
public enum BleuSmoothing
{
    /// <summary><c>none</c>: no smoothing.</summary>
    None,

    /// <summary><c>floor</c>: zero-match orders get precision <c>100·value/total</c> (default value 0.1).</summary>
    Floor,

    /// <summary>
    /// <c>add-k</c>: add <c>value</c> (default 1) to matches and totals of orders ≥ 2. Unlike sacreBLEU,
    /// whose returned <c>counts</c>/<c>totals</c> then include the added k, <see cref="BleuScore.Counts"/>
    /// and <see cref="BleuScore.Totals"/> stay the raw integer statistics (score and precisions are the same).
    /// </summary>
    AddK,

    /// <summary><c>exp</c> (default): the k-th zero-match order gets precision <c>100/(2^k·total)</c>.</summary>
    Exp,
}

/// <summary>sacreBLEU's <c>tokenize</c> choices that this library implements.</summary>
public enum BleuTokenization
{
    /// <summary><c>13a</c> (default): mteval-v13a tokenisation.</summary>
    V13a,

    /// <summary><c>none</c>: the text is used as is (split on whitespace).</summary>
    None,
}

/// <summary>
/// Settings of sacreBLEU's <c>BLEU</c> metric. <see cref="Default"/> is sacreBLEU 2.6.0's
/// <c>BLEU()</c>/<c>corpus_bleu</c> default; <see cref="SentenceDefault"/> is <c>sentence_bleu</c>'s.
/// </summary>
public sealed record SacreBleuOptions
{
    /// <summary>sacreBLEU's corpus defaults: mixed case, 13a, exp smoothing, max order 4, no effective order.</summary>
    public static SacreBleuOptions Default { get; } = new();

    /// <summary><c>sentence_bleu</c> defaults: as <see cref="Default"/> but with effective order on.</summary>
    public static SacreBleuOptions SentenceDefault { get; } = new() { EffectiveOrder = true };

    /// <summary>Lower-case hypotheses and references first (<c>case:lc</c>).</summary>
    public bool Lowercase { get; init; }

    /// <summary>Tokenizer, <c>13a</c> by default.</summary>
    public BleuTokenization Tokenization { get; init; } = BleuTokenization.V13a;

    /// <summary>Smoothing method, <c>exp</c> by default.</summary>
    public BleuSmoothing Smoothing { get; init; } = BleuSmoothing.Exp;

    /// <summary>Smoothing value for <c>floor</c> (default 0.1) and <c>add-k</c> (default 1); null = default.</summary>
    public double? SmoothValue { get; init; }

    /// <summary>Maximum n-gram order, 4 by default.</summary>
    public int MaxNgramOrder { get; init; } = 4;

    /// <summary>Use only the n-gram orders the hypotheses have (sacreBLEU <c>effective_order</c>).</summary>
    public bool EffectiveOrder { get; init; }

    /// <summary>
    /// Treat a reference that is the empty string as padding and drop it for that segment, as if it
    /// were Python's <c>None</c> in sacreBLEU (default <c>true</c>). A <c>null</c> reference is always
    /// dropped. With <c>false</c>, an empty string is an ordinary (zero-length) reference, which is
    /// what sacreBLEU 2.6.0 itself does with <c>""</c>; that can change the closest reference length
    /// and the <c>nrefs</c> field of the signature.
    /// </summary>
    public bool DropEmptyReferences { get; init; } = true;

    internal double EffectiveSmoothValue => SmoothValue ?? Smoothing switch
    {
        BleuSmoothing.Floor => 0.1,
        BleuSmoothing.AddK => 1.0,
        _ => 0.0,
    };

    internal string SmoothingSignature => Smoothing switch
    {
        BleuSmoothing.None => "none",
        BleuSmoothing.Exp => "exp",
        BleuSmoothing.Floor => "floor[" + PythonText.FormatFixed(EffectiveSmoothValue, 2) + "]",
        BleuSmoothing.AddK => "add-k[" + PythonText.FormatFixed(EffectiveSmoothValue, 2) + "]",
        _ => throw new InvalidOperationException($"Unknown smoothing {Smoothing}."),
    };

    internal string TokenizerSignature => Tokenization switch
    {
        BleuTokenization.V13a => Tokenizer13a.Signature,
        BleuTokenization.None => "none",
        _ => throw new InvalidOperationException($"Unknown tokenization {Tokenization}."),
    };
}
