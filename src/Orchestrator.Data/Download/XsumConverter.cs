using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Orchestrator.Data.Download;

/// <summary>
/// Turns the XSUM release (<c>bbc-summary-data/ID.summary</c> files and the authors' split file) into the JSONL the <c>xsum</c>
/// reader takes: <c>xsum-train.jsonl</c>, <c>xsum-dev.jsonl</c> and <c>xsum-test.jsonl</c> with <c>{id, document, summary, topic}</c>.
/// The summary is the article's first sentence (<c>[SN]FIRST-SENTENCE[SN]</c>), the document the rest of the body
/// (<c>[SN]RESTBODY[SN]</c>), and the topic the path of the article's BBC URL without its numeric id
/// (<c>…/news/world-europe-32345678</c> → <c>news/world-europe</c>; <c>…/sport/football/12345</c> → <c>sport/football</c>).
/// </summary>
public static partial class XsumConverter
{
    public const string SplitFile = "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json";
    public const string ArticleFolder = "bbc-summary-data";

    /// <summary>Writes the three JSONL files into <paramref name="directory"/>; articles that are missing or empty are counted and skipped.</summary>
    public static void Convert(string directory, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var splitPath = Path.Combine(directory, SplitFile);
        var articles = Path.Combine(directory, ArticleFolder);
        if (!File.Exists(splitPath) || !Directory.Exists(articles))
        {
            throw new DatasetException($"{directory}: expected {SplitFile} and the {ArticleFolder}/ folder of the XSUM release");
        }

        using var split = JsonDocument.Parse(File.ReadAllText(splitPath));
        foreach (var (part, key) in new[] { ("train", "train"), ("dev", "validation"), ("test", "test") })
        {
            if (!split.RootElement.TryGetProperty(key, out var ids) || ids.ValueKind != JsonValueKind.Array)
            {
                throw new DatasetException($"{splitPath}: no '{key}' list of article ids");
            }

            var output = Path.Combine(directory, $"xsum-{part}.jsonl");
            var (written, missing, empty) = (0, 0, 0);
            using (var writer = new StreamWriter(output + ".tmp", append: false, new System.Text.UTF8Encoding(false)))
            {
                foreach (var idElement in ids.EnumerateArray())
                {
                    var id = idElement.GetString() ?? "";
                    var file = Path.Combine(articles, id + ".summary");
                    if (!File.Exists(file))
                    {
                        missing++;
                        continue;
                    }

                    if (Parse(File.ReadAllText(file)) is not { } article)
                    {
                        empty++;
                        continue;
                    }

                    writer.Write(JsonSerializer.Serialize(new XsumRecord(id, article.Document, article.Summary, article.Topic)));
                    writer.Write('\n');
                    written++;
                }
            }

            File.Move(output + ".tmp", output, overwrite: true);
            var skipped = missing + empty > 0
                ? string.Create(CultureInfo.InvariantCulture, $" ({missing} listed in the split but not in the archive, {empty} without summary, body or URL skipped)")
                : "";
            log(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(output)}: {written} articles{skipped}"));
        }
    }

    /// <summary>One <c>.summary</c> file's summary, document and topic; null when one of them is missing or empty.</summary>
    public static (string Summary, string Document, string Topic)? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sections = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        List<string>? current = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var marker = Marker().Match(line);
            if (marker.Success)
            {
                current = sections[marker.Groups[1].Value] = [];
                continue;
            }

            if (current is not null && line.Trim().Length > 0)
            {
                current.Add(line.Trim());
            }
        }

        var summary = string.Join(' ', sections.GetValueOrDefault("FIRST-SENTENCE") ?? []);
        var document = string.Join('\n', sections.GetValueOrDefault("RESTBODY") ?? []);
        var topic = TopicOf(string.Join(' ', sections.GetValueOrDefault("URL") ?? []));
        return summary.Length == 0 || document.Length == 0 || topic is null ? null : (summary, document, topic);
    }

    /// <summary>The URL's path on the BBC site without the trailing numeric id; null when it is not a BBC article URL.</summary>
    public static string? TopicOf(string url)
    {
        var match = BbcPath().Match(url ?? "");
        if (!match.Success)
        {
            return null;
        }

        var path = TrailingId().Replace(match.Groups[1].Value.TrimEnd('/'), "");
        return path.Length == 0 ? null : path;
    }

    private sealed record XsumRecord(
        [property: System.Text.Json.Serialization.JsonPropertyName("id")] string Id,
        [property: System.Text.Json.Serialization.JsonPropertyName("document")] string Document,
        [property: System.Text.Json.Serialization.JsonPropertyName("summary")] string Summary,
        [property: System.Text.Json.Serialization.JsonPropertyName("topic")] string Topic);

    [GeneratedRegex(@"^\[SN\]([A-Z-]+)\[SN\]\s*$")]
    private static partial Regex Marker();

    [GeneratedRegex(@"bbc\.(?:co\.uk|com)/([^?#\s]+)")]
    private static partial Regex BbcPath();

    [GeneratedRegex(@"[-/]\d+$")]
    private static partial Regex TrailingId();
}
