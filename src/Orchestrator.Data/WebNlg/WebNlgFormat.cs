using System.Xml;
using System.Xml.Linq;

namespace Orchestrator.Data.WebNlg;

/// <summary>One RDF triple of a WebNLG <c>modifiedtripleset</c>.</summary>
public sealed record RdfTriple(string Subject, string Property, string Object);

/// <summary>One <c>lex</c> element: a human verbalisation of the triple set and its quality <c>comment</c>.</summary>
public sealed record WebNlgLexicalisation(string Lid, string Comment, string Text)
{
    /// <summary>Training keeps only lexicalisations marked <c>comment="good"</c> (PROTOCOL.md).</summary>
    public bool IsGood => string.Equals(Comment, "good", StringComparison.Ordinal);
}

/// <summary>One <c>entry</c> of a WebNLG benchmark file, with where it was read from.</summary>
public sealed record WebNlgEntry(
    string Id,
    string Eid,
    string Category,
    IReadOnlyList<RdfTriple> Triples,
    IReadOnlyList<WebNlgLexicalisation> Lexicalisations,
    string File,
    int Line)
{
    /// <summary>The linearised triple set (<see cref="WebNlgFormat.Linearise"/>).</summary>
    public string Source => WebNlgFormat.Linearise(Triples);
}

/// <summary>
/// The WebNLG 2017 challenge XML (<c>benchmark/entries/entry</c> with <c>category</c>, <c>eid</c>,
/// <c>modifiedtripleset/mtriple</c> as <c>s | p | o</c>, and <c>lex</c> elements with a <c>comment</c>).
/// Malformed files are refused with the file, line and reason.
/// </summary>
public static class WebNlgFormat
{
    /// <summary>The 10 categories of the training data (PROTOCOL.md; microsoft/LoRA's list).</summary>
    public static IReadOnlySet<string> SeenCategories { get; } = new SortedSet<string>(StringComparer.Ordinal)
    {
        "Airport", "Astronaut", "Building", "City", "ComicsCharacter", "Food", "Monument", "SportsTeam", "University", "WrittenWork",
    };

    /// <summary>The 5 categories that occur only in the test set.</summary>
    public static IReadOnlySet<string> UnseenCategories { get; } = new SortedSet<string>(StringComparer.Ordinal)
    {
        "Artist", "Athlete", "CelestialBody", "MeanOfTransportation", "Politician",
    };

    public static bool IsSeen(string? category) => category is not null && SeenCategories.Contains(category);

    /// <summary>
    /// PROTOCOL.md / Prefix-Tuning linearisation: every triple becomes <c>" | s : p : o"</c> and the pieces are
    /// concatenated, so the source starts with <c>" | "</c>. The same form is used for training and test inputs
    /// (the original generation script drops the bars of its first test example, a bug not reproduced here).
    /// </summary>
    public static string Linearise(IEnumerable<RdfTriple> triples) =>
        string.Concat(triples.Select(t => $" | {t.Subject} : {t.Property} : {t.Object}"));

    /// <summary>
    /// Reads one benchmark file. Entry ids are <paramref name="idPrefix"/> + <c>/</c> + the entry's <c>eid</c>.
    /// </summary>
    public static IReadOnlyList<WebNlgEntry> ReadFile(string path, string idPrefix)
    {
        var text = TextFiles.ReadUtf8(path);
        XDocument doc;
        try
        {
            doc = XDocument.Parse(text, LoadOptions.SetLineInfo);
        }
        catch (XmlException ex)
        {
            throw new DatasetException($"{path}:{ex.LineNumber}:{ex.LinePosition}: broken XML: {ex.Message}", ex);
        }

        var root = doc.Root!;
        if (root.Name.LocalName != "benchmark")
        {
            throw new DatasetException($"{path}:{Line(root)}: expected a <benchmark> root element, found <{root.Name.LocalName}>");
        }

        var entries = new List<WebNlgEntry>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in root.Elements("entries").Elements("entry"))
        {
            var line = Line(entry);
            string Where() => $"{path}:{line}";
            var eid = Attribute(entry, "eid") ?? throw new DatasetException($"{Where()}: <entry> without an 'eid' attribute");
            var category = Attribute(entry, "category") ?? throw new DatasetException($"{Where()}: entry {eid} has no 'category' attribute");
            if (seen.TryGetValue(eid, out var firstLine))
            {
                throw new DatasetException($"{Where()}: duplicate entry id eid=\"{eid}\" (first at line {firstLine})");
            }

            seen[eid] = line;
            var sets = entry.Elements("modifiedtripleset").ToList();
            if (sets.Count != 1)
            {
                throw new DatasetException($"{Where()}: entry {eid} needs exactly one <modifiedtripleset>, found {sets.Count}");
            }

            var triples = new List<RdfTriple>();
            foreach (var mtriple in sets[0].Elements("mtriple"))
            {
                triples.Add(ParseTriple(mtriple.Value, $"{path}:{Line(mtriple)}", eid));
            }

            if (triples.Count == 0)
            {
                throw new DatasetException($"{Where()}: entry {eid} has an empty <modifiedtripleset> (no <mtriple>)");
            }

            if (Attribute(entry, "size") is { } size && size != triples.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                throw new DatasetException($"{Where()}: entry {eid} says size=\"{size}\" but has {triples.Count} triple(s)");
            }

            var lexes = new List<WebNlgLexicalisation>();
            foreach (var lex in entry.Elements("lex"))
            {
                var lexText = NormaliseSpace(lex.Value);
                if (lexText.Length == 0)
                {
                    throw new DatasetException($"{path}:{Line(lex)}: entry {eid} has an empty <lex> (empty reference)");
                }

                lexes.Add(new WebNlgLexicalisation(Attribute(lex, "lid") ?? $"#{lexes.Count + 1}", lex.Attribute("comment")?.Value.Trim() ?? "", lexText));
            }

            if (lexes.Count == 0)
            {
                throw new DatasetException($"{Where()}: entry {eid} has no <lex> (no references)");
            }

            entries.Add(new WebNlgEntry($"{idPrefix}/{eid}", eid, category, triples, lexes, path, line));
        }

        return entries;
    }

    /// <summary>A training input: the entry with its <c>comment="good"</c> lexicalisations only (null if it has none).</summary>
    public static DataEntry? TrainingEntry(WebNlgEntry e)
    {
        var good = e.Lexicalisations.Where(l => l.IsGood).Select(l => l.Text).ToList();
        return good.Count == 0 ? null : new DataEntry(e.Id, e.Source, good, e.Category);
    }

    /// <summary>An evaluation input: every lexicalisation of the entry is a reference.</summary>
    public static DataEntry EvaluationEntry(WebNlgEntry e) =>
        new(e.Id, e.Source, e.Lexicalisations.Select(l => l.Text).ToList(), e.Category);

    private static RdfTriple ParseTriple(string text, string where, string eid)
    {
        var parts = text.Split('|');
        if (parts.Length != 3 || parts.Any(p => p.Trim().Length == 0))
        {
            throw new DatasetException($"{where}: entry {eid}: a triple must be 'subject | property | object', got '{text.Trim()}'");
        }

        return new RdfTriple(parts[0].Trim(), parts[1].Trim(), parts[2].Trim());
    }

    private static string? Attribute(XElement e, string name)
    {
        var value = e.Attribute(name)?.Value.Trim();
        return string.IsNullOrEmpty(value) ? null : value;
    }

    private static string NormaliseSpace(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    private static int Line(XObject o) => o is IXmlLineInfo info && info.HasLineInfo() ? info.LineNumber : 0;
}
