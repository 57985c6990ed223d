namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// Five hard segments, each with two references, scored with the reference implementations to get the expected
/// numbers in the metric tests: an empty hypothesis, a one-word hypothesis, Unicode punctuation and symbols
/// (em/en dashes, curly quotes, an ellipsis, £, é), a 540-word line with a moved block and substitutions, and an exact
/// match. The same strings were written to files for the Java, Perl and Python tools (see each test's comment).
/// </summary>
internal static class EdgeCorpus
{
    public static readonly string LongReference1 = string.Join(' ', Enumerable.Repeat("the quick brown fox jumps over the lazy dog", 60));

    public static readonly string LongReference2 = string.Join(' ', Enumerable.Repeat("a quick brown fox jumped over a lazy dog", 60));

    /// <summary>The first reference with every word at index ≡ 8 (mod 63) replaced by "cat", then words 20–39 moved to the front.</summary>
    public static readonly string LongHypothesis = BuildLongHypothesis();

    public static IReadOnlyList<string> Hypotheses { get; } =
    [
        "",
        "Pub.",
        "The Eagle \u2014 a \u201cfamily-friendly\u201d pub near Caf\u00e9 Rouge\u2026 costs \u00a320\u201325!",
        LongHypothesis,
        "Zizzi is a cheap coffee shop in the city centre.",
    ];

    public static IReadOnlyList<IReadOnlyList<string>> References { get; } =
    [
        ["The Eagle is a pub near Burger King.", "Near Burger King is a pub called The Eagle."],
        ["The Eagle is a pub.", "A pub."],
        ["The Eagle is a family-friendly pub near Caf\u00e9 Rouge; it costs \u00a320-25.", "\u201cThe Eagle\u201d \u2013 near Caf\u00e9 Rouge \u2013 is a family friendly pub, \u00a320\u201325."],
        [LongReference1, LongReference2],
        ["Zizzi is a cheap coffee shop in the city centre.", "Zizzi, a coffee shop, is cheap."],
    ];

    /// <summary>The same references with empty padding lines, as read from padded reference files.</summary>
    public static IReadOnlyList<IReadOnlyList<string>> PaddedReferences { get; } =
        References.Select(g => (IReadOnlyList<string>)g.Concat(["", ""]).ToList()).ToList();

    private static string BuildLongHypothesis()
    {
        var words = LongReference1.Split(' ').Select((w, i) => i % 63 == 8 ? "cat" : w).ToList();
        return string.Join(' ', words.Skip(20).Take(20).Concat(words.Take(20)).Concat(words.Skip(40)));
    }
}
