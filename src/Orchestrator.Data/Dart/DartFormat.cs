using System.Globalization;
using System.Text.Json;
using Orchestrator.Data.Json;

namespace Orchestrator.Data.Dart;

/// <summary>
/// DART (Yale-LILY/dart v1.1.1): a JSON list of <c>{"tripleset": [[s, p, o], …], "annotations": [{"source", "text"}, …]}</c>.
/// Each element is one input; all its annotation texts are its references. Errors name the file, the line where
/// the element starts and its index.
/// </summary>
public static class DartFormat
{
    /// <summary>Prefix-Tuning's DART linearisation: <c>s : p.lower() : o</c> joined by <c> | </c> (no leading bar).</summary>
    public static string Linearise(IEnumerable<(string Subject, string Property, string Object)> triples) =>
        string.Join(" | ", triples.Select(t => $"{t.Subject} : {t.Property.ToLowerInvariant()} : {t.Object}"));

    /// <summary>Reads a DART JSON file; entry ids are <paramref name="idPrefix"/> + <c>/</c> + the element's index (5 digits).</summary>
    public static IReadOnlyList<DataEntry> Read(string path, string idPrefix)
    {
        var bytes = TextFiles.ReadUtf8Bytes(path);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        var entries = new List<DataEntry>();
        var (line, scanned) = (1, 0L);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
            {
                throw new DatasetException($"{path}:1: expected a JSON list of DART entries");
            }

            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var index = entries.Count;
                for (; scanned < reader.TokenStartIndex; scanned++)
                {
                    line += bytes[scanned] == (byte)'\n' ? 1 : 0;
                }

                var where = $"{path}:{line} (entry {index})";
                using var element = JsonDocument.ParseValue(ref reader);
                entries.Add(ParseEntry(element.RootElement, $"{idPrefix}/{index.ToString("D5", CultureInfo.InvariantCulture)}", where));
            }

            if (reader.TokenType != JsonTokenType.EndArray)
            {
                throw new DatasetException($"{path}: broken JSON: the list is not closed");
            }
        }
        catch (JsonException ex)
        {
            throw new DatasetException($"{path}:{JsonText.ErrorLine(ex)}: broken JSON: {JsonText.Reason(ex)}", ex);
        }

        return entries;
    }

    private static DataEntry ParseEntry(JsonElement e, string id, string where)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new DatasetException($"{where}: expected an object, got {JsonText.Describe(e.ValueKind)}");
        }

        var triples = new List<(string, string, string)>();
        var k = 0;
        foreach (var t in JsonText.RequiredArray(e, "tripleset", where).EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Array || t.GetArrayLength() != 3 || t.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
            {
                throw new DatasetException($"{where}: tripleset[{k}] must be a list of 3 strings [subject, property, object]");
            }

            // The parts are kept as written (the input text is part of the dataset's identity); only references are
            // whitespace-normalised.
            var parts = t.EnumerateArray().Select(x => x.GetString()!).ToArray();
            if (parts[0].Trim().Length == 0 || parts[1].Trim().Length == 0)
            {
                throw new DatasetException($"{where}: tripleset[{k}] has an empty {(parts[0].Trim().Length == 0 ? "subject" : "property")}");
            }

            triples.Add((parts[0], parts[1], parts[2]));
            k++;
        }

        if (triples.Count == 0)
        {
            throw new DatasetException($"{where}: empty tripleset");
        }

        var references = new List<string>();
        var a = 0;
        foreach (var annotation in JsonText.RequiredArray(e, "annotations", where).EnumerateArray())
        {
            if (annotation.ValueKind != JsonValueKind.Object)
            {
                throw new DatasetException($"{where}: annotations[{a}] must be an object with a 'text'");
            }

            references.Add(JsonText.OneLine(JsonText.RequiredString(annotation, "text", $"{where} annotations[{a}]")));
            a++;
        }

        if (references.Count == 0)
        {
            throw new DatasetException($"{where}: no annotations (empty references)");
        }

        return new DataEntry(id, Linearise(triples), references);
    }
}
