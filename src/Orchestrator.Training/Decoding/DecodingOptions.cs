namespace Orchestrator.Training.Decoding;

/// <summary>
/// Settings of <see cref="GreedyDecoder"/> and <see cref="BeamSearchDecoder"/>.
/// <para>
/// <see cref="MaxNewTokens"/>: at most this many generated tokens (the end token included when it is generated).
/// <see cref="MinNewTokens"/>: the end token is forbidden before this many tokens. <see cref="BannedTokenIds"/> are never
/// generated (the protocol bans newline tokens: <see cref="Tokenization.TokenizerFiles.NewlineTokenIds"/>).
/// <see cref="MinLength"/>: the end token is also forbidden while prompt + generated tokens are fewer than this
/// (transformers' <c>min_length</c>, which counts the prompt; 0: no such bound).
/// <see cref="BeamSize"/> and <see cref="LengthPenalty"/> are used by beam search: a finished hypothesis scores
/// Σ log p / L^LengthPenalty (1.0: mean log-probability, 0: plain sum), where L depends on <see cref="Normalization"/>.
/// <see cref="BatchSize"/> is the number of sources decoded together (each with its beams).
/// </para>
/// </summary>
public sealed record DecodingOptions
{
    /// <summary>The end token is forbidden while prompt + generated tokens are fewer than this (0: never).</summary>
    public int MinLength { get; init; }

    /// <summary>What the length L of a beam hypothesis' score counts.</summary>
    public LengthNormalization Normalization { get; init; } = LengthNormalization.NewTokens;

    public int MaxNewTokens { get; init; } = 100;

    public int MinNewTokens { get; init; }

    public int BeamSize { get; init; } = 1;

    public double LengthPenalty { get; init; } = 1.0;

    public IReadOnlyCollection<int> BannedTokenIds { get; init; } = [];

    public int BatchSize { get; init; } = 16;

    /// <summary>Throws <see cref="ArgumentException"/> naming every invalid field.</summary>
    public DecodingOptions Validate()
    {
        var problems = new List<string>();
        if (MaxNewTokens < 1) problems.Add($"MaxNewTokens must be at least 1 (got {MaxNewTokens})");
        if (MinNewTokens < 0) problems.Add($"MinNewTokens must not be negative (got {MinNewTokens})");
        if (MinLength < 0) problems.Add($"MinLength must not be negative (got {MinLength})");
        if (BeamSize < 1) problems.Add($"BeamSize must be at least 1 (got {BeamSize})");
        if (!double.IsFinite(LengthPenalty)) problems.Add($"LengthPenalty must be finite (got {LengthPenalty})");
        if (BatchSize < 1) problems.Add($"BatchSize must be at least 1 (got {BatchSize})");
        if (BannedTokenIds is null) problems.Add("BannedTokenIds must not be null");
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid decoding options: " + string.Join("; ", problems) + ".");
        }

        return this;
    }
}

/// <summary>The length by which beam search divides a hypothesis' log-probability (raised to the length penalty).</summary>
public enum LengthNormalization
{
    /// <summary>
    /// Generated tokens: a hypothesis closed by the end token counts it; the search stops a source when its best running
    /// beam over its current length cannot beat its worst kept hypothesis (current transformers).
    /// </summary>
    NewTokens,

    /// <summary>
    /// The whole sequence as transformers 3.x (Li &amp; Liang's runs) counted it: prompt + generated tokens, without the
    /// end token of a closed hypothesis; a source stops when the best of its step's candidates over prompt + tokens so far
    /// cannot beat its worst kept hypothesis.
    /// </summary>
    FullSequence,
}
