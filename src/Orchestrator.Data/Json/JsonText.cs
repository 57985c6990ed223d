using System.Globalization;
using System.Text.Json;

namespace Orchestrator.Data.Json;

/// <summary>Small helpers for the JSON readers: typed field access that fails with the file, line and field.</summary>
internal static class JsonText
{
    public static string Where(string path, int line) => $"{path}:{line}";

    /// <summary>A required non-empty string field (a JSON number is accepted for ids and printed invariantly).</summary>
    public static string RequiredString(JsonElement obj, string field, string where, bool allowNumber = false)
    {
        if (!obj.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            throw new DatasetException($"{where}: missing field '{field}'");
        }

        var text = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.Number when allowNumber => value.GetRawText(),
            _ => throw new DatasetException($"{where}: field '{field}' must be a {(allowNumber ? "string or number" : "string")}, got {Describe(value.ValueKind)}"),
        };

        if (text.Trim().Length == 0)
        {
            throw new DatasetException($"{where}: field '{field}' is empty");
        }

        return text;
    }

    /// <summary>An optional string field: null when absent or JSON null; an empty string is refused.</summary>
    public static string? OptionalString(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw new DatasetException($"{where}: field '{field}' must be a string, got {Describe(value.ValueKind)}");
        }

        var text = value.GetString()!.Trim();
        return text.Length == 0 ? throw new DatasetException($"{where}: field '{field}' is empty") : text;
    }

    public static JsonElement RequiredArray(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            throw new DatasetException($"{where}: missing field '{field}'");
        }

        return value.ValueKind == JsonValueKind.Array
            ? value
            : throw new DatasetException($"{where}: field '{field}' must be a list, got {Describe(value.ValueKind)}");
    }

    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString().ToLower(CultureInfo.InvariantCulture),
    };

    /// <summary>One whitespace-normalised line (references must not contain line breaks in line-based files).</summary>
    public static string OneLine(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    /// <summary>
    /// The JSON reader's message without its own "LineNumber: … | BytePositionInLine: …" (its line counts from 0 and, for a
    /// line parsed alone, is always 0; the caller names the real line), with the 1-based column instead.
    /// </summary>
    public static string Reason(JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        var message = System.Text.RegularExpressions.Regex.Replace(ex.Message, @"\s*LineNumber: \d+ \| BytePositionInLine: \d+\.?\s*$", "").TrimEnd();
        return ex.BytePositionInLine is { } column ? $"{message} (column {column + 1})" : message;
    }

    /// <summary>1-based line of a JSON reader error.</summary>
    public static int ErrorLine(JsonException ex, int baseLine = 1) => (int)(ex.LineNumber ?? 0) + baseLine;
}
