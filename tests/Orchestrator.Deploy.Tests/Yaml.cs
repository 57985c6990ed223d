using YamlDotNet.RepresentationModel;

namespace Orchestrator.Deploy.Tests;

/// <summary>
/// YAML as plain values: mappings become <see cref="Dictionary{TKey,TValue}"/> (string keys), sequences
/// <see cref="List{T}"/>, scalars strings (null for an empty or null scalar). Anchors and aliases are resolved and
/// merge keys (<c>&lt;&lt;: *anchor</c>, as compose files use them) are applied: explicit keys win.
/// </summary>
public static class Yaml
{
    public static IReadOnlyList<object?> LoadAll(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Select(d => Convert(d.RootNode)).Where(d => d is not null).ToList();
    }

    public static Dictionary<string, object?> LoadMapping(string text) =>
        LoadAll(text) is [Dictionary<string, object?> map] ? map : throw new FormatException("expected one YAML mapping");

    private static object? Convert(YamlNode node)
    {
        switch (node)
        {
            case YamlScalarNode scalar:
                return scalar.Style == YamlDotNet.Core.ScalarStyle.Plain && scalar.Value is "" or "~" or "null" or null ? null : scalar.Value;
            case YamlSequenceNode sequence:
                return sequence.Children.Select(Convert).ToList();
            case YamlMappingNode mapping:
                var merged = new Dictionary<string, object?>(StringComparer.Ordinal);
                var own = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (keyNode, valueNode) in mapping.Children)
                {
                    var key = ((YamlScalarNode)keyNode).Value ?? "";
                    if (key == "<<" && ((YamlScalarNode)keyNode).Style == YamlDotNet.Core.ScalarStyle.Plain)
                    {
                        var sources = Convert(valueNode) switch
                        {
                            Dictionary<string, object?> one => [one],
                            List<object?> many => many.OfType<Dictionary<string, object?>>().ToList(),
                            _ => throw new FormatException("a merge key (<<) needs a mapping or a list of mappings"),
                        };
                        foreach (var source in sources)
                        {
                            foreach (var (k, v) in source)
                            {
                                merged.TryAdd(k, v);
                            }
                        }
                    }
                    else
                    {
                        own[key] = Convert(valueNode);
                    }
                }

                foreach (var (k, v) in own)
                {
                    merged[k] = v;
                }

                return merged;
            default:
                throw new FormatException($"unexpected YAML node {node.NodeType}");
        }
    }
}

/// <summary>Navigation helpers over <see cref="Yaml"/> values.</summary>
public static class YamlValue
{
    public static Dictionary<string, object?>? Map(this object? value, string key) =>
        value is Dictionary<string, object?> m && m.TryGetValue(key, out var v) ? v as Dictionary<string, object?> : null;

    public static List<object?> List(this object? value, string key) =>
        value is Dictionary<string, object?> m && m.TryGetValue(key, out var v) && v is List<object?> l ? l : [];

    public static string? Str(this object? value, string key) =>
        value is Dictionary<string, object?> m && m.TryGetValue(key, out var v) ? v as string : null;

    public static IEnumerable<Dictionary<string, object?>> Maps(this object? value, string key) =>
        value.List(key).OfType<Dictionary<string, object?>>();

    /// <summary>Follows a path of keys through nested mappings.</summary>
    public static object? At(this object? value, params string[] path)
    {
        foreach (var key in path)
        {
            if (value is not Dictionary<string, object?> m || !m.TryGetValue(key, out value))
            {
                return null;
            }
        }

        return value;
    }
}
