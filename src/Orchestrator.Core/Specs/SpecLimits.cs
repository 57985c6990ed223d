namespace Orchestrator.Core.Specs;

/// <summary>
/// The bounds a spec must stay within. Values that size memory up front (steps, evaluation inputs, decode lengths, beams,
/// the number of cells) have an upper bound so that a typo or a hostile file gets a spec error naming the field and the
/// limit, not an out-of-memory crash on a worker; the YAML bounds keep a hostile file from crashing or hanging the parser.
/// </summary>
public static class SpecLimits
{
    /// <summary>Largest spec file (or inline text) accepted: 1 MiB. Real specs are a few kilobytes.</summary>
    public const long MaxSpecBytes = 1024 * 1024;

    /// <summary>Deepest nesting of lists and mappings in the YAML. Specs use fewer than ten levels.</summary>
    public const int MaxNestingDepth = 64;

    /// <summary>Most YAML nodes, counting each alias as the nodes it stands for (so an alias bomb is refused unexpanded).</summary>
    public const int MaxYamlNodes = 100_000;

    /// <summary>Largest training-set size in <c>grid.sizes</c> (its dev set adds 30%, still far from 2^31).</summary>
    public const int MaxSize = 10_000_000;

    /// <summary>Most update steps of a cell (<c>training.max_steps</c>; the trainer allocates its loss curve up front).</summary>
    public const int MaxSteps = 1_000_000;

    /// <summary>Most warmup steps and the longest interval between dev evaluations.</summary>
    public const int MaxWarmupSteps = MaxSteps;

    /// <summary>Most evaluation inputs per split (<c>dataset.eval_limit</c>).</summary>
    public const int MaxEvalLimit = 1_000_000;

    /// <summary>Most tokens decoded per output (<c>decoding.max_new_tokens</c>).</summary>
    public const int MaxNewTokens = 4096;

    /// <summary>Widest beam (<c>decoding.beam_size</c>).</summary>
    public const int MaxBeamSize = 64;

    /// <summary>Most cells one spec may expand to unless the user raises it (<c>--max-cells</c>).</summary>
    public const int DefaultMaxCells = 10_000;

    /// <summary>Longest piece of a user's value quoted back in an error message.</summary>
    public const int MaxQuotedLength = 80;

    /// <summary>Most problems listed in one error message (the rest are counted).</summary>
    public const int MaxListedErrors = 50;

    /// <summary>
    /// <paramref name="value"/> as it is quoted in messages: cut to <see cref="MaxQuotedLength"/> characters (saying how long
    /// it was) and with line breaks shown as <c>\n</c>, so a huge or multi-line junk value cannot flood the terminal.
    /// </summary>
    public static string Quote(string? value)
    {
        value ??= "";
        var flat = value.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
        return flat.Length <= MaxQuotedLength ? flat : $"{flat[..MaxQuotedLength]}… ({value.Length:N0} characters)";
    }
}
