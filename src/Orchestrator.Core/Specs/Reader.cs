using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Orchestrator.Core.Specs;

/// <summary>Typed, path-aware access to a YAML tree; every problem is recorded as a <see cref="SpecError"/>.</summary>
internal sealed class Reader(List<SpecError> errors)
{
    public bool HasErrors => errors.Count > 0;

    public void Error(string path, string message, YamlNode? near) =>
        errors.Add(new SpecError(path, message, near is null ? null : (int)near.Start.Line));

    public void Error(string path, string message, YamlMappingNode map, string? key)
    {
        YamlNode near = map;
        if (key is not null && map.Children.TryGetValue(new YamlScalarNode(key), out var child))
        {
            near = child;
        }

        Error(path, message, near);
    }

    public static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s when s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted => $"the string '{SpecLimits.Quote(s.Value)}'",
        YamlScalarNode s when string.IsNullOrEmpty(s.Value) || s.Value is "~" or "null" => "nothing (null)",
        YamlScalarNode s => $"'{SpecLimits.Quote(s.Value)}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => node.NodeType.ToString(),
    };

    /// <summary>Checks that a node is a mapping whose keys are all in <paramref name="allowed"/>.</summary>
    public YamlMappingNode? Map(YamlNode node, string path, params string[] allowed)
    {
        if (node is not YamlMappingNode map)
        {
            Error(path == "" ? "(root)" : path, $"expected a mapping of keys to values, got {Describe(node)}", node);
            return null;
        }

        foreach (var key in map.Children.Keys)
        {
            var name = SpecLimits.Quote((key as YamlScalarNode)?.Value ?? "?");
            if (!allowed.Contains(name, StringComparer.Ordinal))
            {
                var full = path == "" ? name : $"{path}.{name}";
                var hint = Closest(name, allowed);
                Error(full, $"unknown key '{name}'" + DidYouMean(hint) +
                    $"; allowed here: {string.Join(", ", allowed)}", key);
            }
        }

        return map;
    }

    public YamlNode? Child(YamlMappingNode map, string key, string parentPath, bool required)
    {
        if (map.Children.TryGetValue(new YamlScalarNode(key), out var node) && !IsNull(node))
        {
            return node;
        }

        if (required)
        {
            Error(parentPath == "" ? key : $"{parentPath}.{key}", "required but missing", map);
        }

        return null;
    }

    public string? String(YamlMappingNode map, string key, string path, bool required)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            if (required)
            {
                Error(path, "required but missing", map);
            }

            return null;
        }

        if (node is not YamlScalarNode s)
        {
            Error(path, $"expected a text value, got {Describe(node)}", node);
            return null;
        }

        if (string.IsNullOrWhiteSpace(s.Value))
        {
            Error(path, "must not be empty", node);
            return null;
        }

        return s.Value;
    }

    public int? Int(YamlMappingNode map, string key, string path, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            return null;
        }

        return IntValue(node, path, min, max);
    }

    public int? IntValue(YamlNode node, string path, int min = int.MinValue, int max = int.MaxValue)
    {
        if (node is not YamlScalarNode s || s.Style != ScalarStyle.Plain ||
            !int.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            Error(path, $"expected an integer, got {Describe(node)}", node);
            return null;
        }

        if (value < min || value > max)
        {
            var range = max == int.MaxValue ? $"at least {min}" : string.Create(CultureInfo.InvariantCulture, $"between {min:N0} and {max:N0}");
            Error(path, $"must be {range}, got {value}", node);
            return null;
        }

        return value;
    }

    public double? Double(YamlMappingNode map, string key, string path, double? minExclusive = null, double? minInclusive = null)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            return null;
        }

        if (node is not YamlScalarNode s || s.Style != ScalarStyle.Plain ||
            !double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ||
            double.IsNaN(value) || double.IsInfinity(value))
        {
            Error(path, $"expected a number, got {Describe(node)}", node);
            return null;
        }

        if (minExclusive is { } lo && value <= lo)
        {
            Error(path, $"must be greater than {lo.ToString(CultureInfo.InvariantCulture)}, got {s.Value}", node);
            return null;
        }

        if (minInclusive is { } lo2 && value < lo2)
        {
            Error(path, $"must be at least {lo2.ToString(CultureInfo.InvariantCulture)}, got {s.Value}", node);
            return null;
        }

        return value;
    }

    public bool? Bool(YamlMappingNode map, string key, string path)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            return null;
        }

        if (node is YamlScalarNode { Style: ScalarStyle.Plain } s)
        {
            switch (s.Value)
            {
                case "true" or "True" or "TRUE": return true;
                case "false" or "False" or "FALSE": return false;
            }
        }

        Error(path, $"expected true or false, got {Describe(node)}", node);
        return null;
    }

    public List<int>? IntList(YamlMappingNode map, string key, string path, int min, bool required, int max = int.MaxValue)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            if (required)
            {
                Error(path, "required but missing", map);
            }

            return null;
        }

        if (node is not YamlSequenceNode seq)
        {
            Error(path, $"expected a list of integers, got {Describe(node)}", node);
            return null;
        }

        var result = new List<int>();
        var ok = true;
        for (var i = 0; i < seq.Children.Count; i++)
        {
            if (IntValue(seq.Children[i], $"{path}[{i}]", min, max) is { } v)
            {
                result.Add(v);
            }
            else
            {
                ok = false;
            }
        }

        return ok ? result : null;
    }

    public List<string>? StringList(YamlMappingNode map, string key, string path)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            return null;
        }

        if (node is not YamlSequenceNode seq)
        {
            Error(path, $"expected a list, got {Describe(node)}", node);
            return null;
        }

        var result = new List<string>();
        for (var i = 0; i < seq.Children.Count; i++)
        {
            if (seq.Children[i] is YamlScalarNode s && !string.IsNullOrWhiteSpace(s.Value))
            {
                result.Add(s.Value!);
            }
            else
            {
                Error($"{path}[{i}]", $"expected a name, got {Describe(seq.Children[i])}", seq.Children[i]);
            }
        }

        return result;
    }

    /// <summary>A mapping of option names to scalar values, kept as canonical strings in key order.</summary>
    public SortedDictionary<string, string>? ScalarMap(YamlMappingNode map, string key, string path)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node) || IsNull(node))
        {
            return null;
        }

        if (node is not YamlMappingNode m)
        {
            Error(path, $"expected a mapping of option names to values, got {Describe(node)}", node);
            return null;
        }

        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in m.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "?";
            if (v is not YamlScalarNode s)
            {
                Error($"{path}.{SpecLimits.Quote(name)}", $"expected a single value, got {Describe(v)}", v);
                continue;
            }

            result[name] = s.Value ?? "";
        }

        return result;
    }

    /// <summary><c> (did you mean 'x'?)</c>, or nothing without a suggestion.</summary>
    internal static string DidYouMean(string? hint) => hint is null ? "" : $" (did you mean '{hint}'?)";

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain } s && (string.IsNullOrEmpty(s.Value) || s.Value is "~" or "null");

    /// <summary>The candidate nearest to <paramref name="name"/> by edit distance, if near enough to be a likely typo.</summary>
    internal static string? Closest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            var d = Levenshtein(name.ToLowerInvariant(), c);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = c;
            }
        }

        return bestDistance <= Math.Max(2, name.Length / 3) ? best : null;
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
