using System.Text;
using System.Text.RegularExpressions;

namespace Orchestrator.Data.E2E;

/// <summary>E2E meaning representations: <c>name[The Eagle], eatType[pub]</c> ⇄ <c>name : The Eagle | eatType : pub</c>.</summary>
public static partial class E2eFormat
{
    public static IReadOnlyList<(string Field, string Value)> ParseMr(string mr)
    {
        var fields = new List<(string, string)>();
        foreach (Match m in MrField().Matches(mr))
        {
            fields.Add((m.Groups[1].Value.Trim(), m.Groups[2].Value.Trim()));
        }

        if (fields.Count == 0)
        {
            throw new FormatException($"not an E2E meaning representation (expected 'field[value], ...'): '{mr}'");
        }

        return fields;
    }

    public static string FormatMr(IEnumerable<(string Field, string Value)> fields) =>
        string.Join(", ", fields.Select(f => $"{f.Field}[{f.Value}]"));

    /// <summary>PROTOCOL.md linearisation: <c>field : value</c> joined by <c> | </c>.</summary>
    public static string Linearise(string mr) => string.Join(" | ", ParseMr(mr).Select(f => $"{f.Field} : {f.Value}"));

    /// <summary>Reads an E2E CSV (<c>mr,ref</c>, one row per reference, rows of one MR adjacent) into entries.</summary>
    public static IReadOnlyList<(string Mr, List<string> Refs, int Line)> ReadCsv(string path)
    {
        var text = TextFiles.ReadUtf8(path);
        var rows = Csv.Parse(text, path);
        if (rows.Count == 0 || rows[0].Fields.Count < 2 || rows[0].Fields[0] != "mr" || rows[0].Fields[1] != "ref")
        {
            var found = rows.Count == 0 ? "an empty file" : $"'{Shorten(string.Join(",", rows[0].Fields))}'";
            throw new DatasetException($"{path}:1: expected the header 'mr,ref', found {found}");
        }

        var result = new List<(string, List<string>, int)>();
        foreach (var (line, fields) in rows.Skip(1))
        {
            if (fields.Count != 2)
            {
                throw new DatasetException($"{path}:{line}: expected 2 fields (mr, ref), found {fields.Count}");
            }

            var (mr, reference) = (fields[0].Trim(), fields[1].Trim());
            if (mr.Length == 0 || reference.Length == 0)
            {
                throw new DatasetException($"{path}:{line}: empty {(mr.Length == 0 ? "mr" : "ref")}");
            }

            try
            {
                ParseMr(mr);
            }
            catch (FormatException ex)
            {
                throw new DatasetException($"{path}:{line}: {ex.Message}", ex);
            }

            if (result.Count > 0 && result[^1].Item1 == mr)
            {
                result[^1].Item2.Add(reference);
            }
            else
            {
                result.Add((mr, [reference], line));
            }
        }

        return result;
    }

    /// <summary>A found header as shown in a message: at most 80 characters.</summary>
    private static string Shorten(string text) => text.Length <= 80 ? text : text[..77] + "...";

    [GeneratedRegex(@"([^,\[\]]+)\[([^\]]*)\]")]
    private static partial Regex MrField();
}
