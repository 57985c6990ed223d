using System.Text;
using System.Text.Json;

namespace Orchestrator.Data.Json;

/// <summary>
/// JSON-lines datasets, one object per line (blank lines are skipped):
/// <list type="bullet">
/// <item><b>XSUM</b>: <c>{"id", "document", "summary", "topic"}</c>; the source is the document, the one reference the summary.</item>
/// <item><b>generic</b>: <c>{"id", "source", "references": [..], "topic"?}</c>.</item>
/// </list>
/// Ids must be unique; every error names the file, the line and the field.
/// </summary>
public static class JsonlFormat
{
    public static IReadOnlyList<DataEntry> ReadXsum(string path) => Read(path, (obj, where) =>
    {
        var id = JsonText.RequiredString(obj, "id", where, allowNumber: true).Trim();
        var document = JsonText.RequiredString(obj, "document", where).Trim();
        var summary = JsonText.OneLine(JsonText.RequiredString(obj, "summary", where));
        var topic = JsonText.RequiredString(obj, "topic", where).Trim();
        return new DataEntry(id, document, [summary], topic);
    });

    public static IReadOnlyList<DataEntry> ReadGeneric(string path) => Read(path, (obj, where) =>
    {
        var id = JsonText.RequiredString(obj, "id", where, allowNumber: true).Trim();
        var source = JsonText.RequiredString(obj, "source", where).Trim();
        var references = new List<string>();
        var k = 0;
        foreach (var r in JsonText.RequiredArray(obj, "references", where).EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.String)
            {
                throw new DatasetException($"{where}: references[{k}] must be a string, got {JsonText.Describe(r.ValueKind)}");
            }

            var text = JsonText.OneLine(r.GetString()!);
            if (text.Length == 0)
            {
                throw new DatasetException($"{where}: references[{k}] is empty (empty reference)");
            }

            references.Add(text);
            k++;
        }

        if (references.Count == 0)
        {
            throw new DatasetException($"{where}: 'references' is an empty list (no references)");
        }

        return new DataEntry(id, source, references, JsonText.OptionalString(obj, "topic", where));
    });

    private static List<DataEntry> Read(string path, Func<JsonElement, string, DataEntry> parse)
    {
        var text = TextFiles.ReadUtf8(path);
        var entries = new List<DataEntry>();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                continue;
            }

            var where = $"{path}:{lineNumber}";
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException ex)
            {
                throw new DatasetException($"{where}: broken JSON: {JsonText.Reason(ex)}", ex);
            }

            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new DatasetException($"{where}: expected one JSON object per line, got {JsonText.Describe(doc.RootElement.ValueKind)}");
                }

                var entry = parse(doc.RootElement, where);
                if (firstLine.TryGetValue(entry.Id, out var first))
                {
                    throw new DatasetException($"{where}: duplicate id '{entry.Id}' (first at line {first})");
                }

                firstLine[entry.Id] = lineNumber;
                entries.Add(entry);
            }
        }

        if (entries.Count == 0)
        {
            throw new DatasetException($"{path}: no entries (the file is empty)");
        }

        return entries;
    }

    /// <summary>Serialises entries as generic JSONL (used by tests and tools).</summary>
    public static string ToGenericJsonl(IEnumerable<DataEntry> entries)
    {
        var sb = new StringBuilder();
        foreach (var e in entries)
        {
            var obj = new Dictionary<string, object?> { ["id"] = e.Id, ["source"] = e.Source, ["references"] = e.References };
            if (e.Category is not null)
            {
                obj["topic"] = e.Category;
            }

            sb.Append(JsonSerializer.Serialize(obj)).Append('\n');
        }

        return sb.ToString();
    }
}
