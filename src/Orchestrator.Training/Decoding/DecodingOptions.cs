namespace Orchestrator.Training.Decoding;

/// <summary>
/// Settings of <see cref="GreedyDecoder"/> and <see cref="BeamSearchDecoder"/>.
/// <para>
/// <see cref="MaxNewTokens"/>: at most this many generated tokens (the end token included when it is generated).
/// <see cref="MinNewTokens"/>: the end token is forbidden before this many tokens. <see cref="BannedTokenIds"/> are never
/// generated (the protocol bans newline tokens: <see cref="Tokenization.TokenizerFiles.NewlineTokenIds"/>).
/// <see cref="BeamSize"/> and <see cref="LengthPenalty"/> are used by beam search: a finished hypothesis scores
/// Σ log p / L^LengthPenalty, L = number of generated tokens including its end token (1.0: mean log-probability,
/// 0: plain sum). <see cref="BatchSize"/> is the number of sources decoded together (each with its beams).
/// </para>
/// </summary>
public sealed record DecodingOptions
{
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
