using System.Globalization;

namespace Orchestrator.Training.Peft;

/// <summary>One option of a method: its name, its default (canonical string) and what it means.</summary>
public sealed record PeftOptionInfo(string Name, string Default, string Description);

/// <summary>A method's options are invalid. <see cref="Problems"/> lists every problem, each starting with the option's path.</summary>
public sealed class PeftOptionsException : ArgumentException
{
    public PeftOptionsException(string method, IReadOnlyList<string> problems)
        : base($"Invalid options for PEFT method '{method}': " + string.Join("; ", problems))
    {
        Method = method;
        Problems = problems;
    }

    public string Method { get; }

    public IReadOnlyList<string> Problems { get; }
}

/// <summary>
/// Reads a method's options from canonical strings (as in a sweep spec's <c>methods[i].options</c>), one typed call per
/// option, collecting every problem with its path (<c>methods[0].options.r: expected a positive integer, got 'x'</c>).
/// It also records the declared options (for documentation) and the effective values (defaults filled in, canonical).
/// </summary>
public sealed class PeftOptionReader
{
    private readonly IReadOnlyDictionary<string, string> _given;
    private readonly string _path;
    private readonly List<PeftOptionInfo> _declared = [];
    private readonly SortedDictionary<string, string> _effective = new(StringComparer.Ordinal);
    private readonly List<string> _problems = [];

    /// <param name="method">The method's registry name (for messages).</param>
    /// <param name="given">The options as given; null or empty: all defaults. Keys are case-sensitive.</param>
    /// <param name="path">Path of the options in messages, e.g. <c>methods[0].options</c>.</param>
    public PeftOptionReader(string method, IReadOnlyDictionary<string, string>? given, string path = "options")
    {
        Method = method;
        _given = given ?? new Dictionary<string, string>();
        _path = path;
    }

    public string Method { get; }

    /// <summary>The options read so far, in declaration order.</summary>
    public IReadOnlyList<PeftOptionInfo> Declared => _declared;

    /// <summary>Effective values of every declared option (given or default), canonical strings, sorted by name.</summary>
    public IReadOnlyDictionary<string, string> Effective => _effective;

    /// <summary>Whether the caller gave option <paramref name="name"/> explicitly.</summary>
    public bool IsGiven(string name) => _given.ContainsKey(name);

    /// <summary>Records a problem about option <paramref name="name"/> (checks spanning several options).</summary>
    public void Problem(string name, string message) => _problems.Add($"{_path}.{name}: {message}");

    /// <summary>An integer ≥ <paramref name="min"/> (1 by default: "a positive integer").</summary>
    public int Int(string name, int defaultValue, string description, int min = 1, int max = int.MaxValue)
    {
        string? raw = Declare(name, defaultValue.ToString(CultureInfo.InvariantCulture), description);
        if (raw is null) return defaultValue;
        if (int.TryParse(raw.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max)
        {
            _effective[name] = value.ToString(CultureInfo.InvariantCulture);
            return value;
        }

        string expected = (min, max) switch
        {
            (1, int.MaxValue) => "a positive integer",
            (0, int.MaxValue) => "a non-negative integer",
            (_, int.MaxValue) => $"an integer >= {min}",
            _ => $"an integer from {min} to {max}",
        };
        Problem(name, $"expected {expected}, got '{raw}'");
        return defaultValue;
    }

    /// <summary>A positive integer or the word <paramref name="keyword"/> (the default), which returns null.</summary>
    public int? IntOrKeyword(string name, string keyword, string description)
    {
        string? raw = Declare(name, keyword, description);
        if (raw is null) return null;
        string trimmed = raw.Trim();
        if (string.Equals(trimmed, keyword, StringComparison.OrdinalIgnoreCase))
        {
            _effective[name] = keyword;
            return null;
        }

        if (int.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) && value >= 1)
        {
            _effective[name] = value.ToString(CultureInfo.InvariantCulture);
            return value;
        }

        Problem(name, $"expected a positive integer or '{keyword}', got '{raw}'");
        return null;
    }

    /// <summary>A finite number in [<paramref name="min"/>, <paramref name="max"/>] (<paramref name="min"/> excluded when <paramref name="minExclusive"/>).</summary>
    public double Double(string name, double defaultValue, string description, double min = double.NegativeInfinity, double max = double.PositiveInfinity, bool minExclusive = false)
    {
        string? raw = Declare(name, Canonical(defaultValue), description);
        if (raw is null) return defaultValue;
        if (double.TryParse(raw.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) &&
            (minExclusive ? value > min : value >= min) && value <= max)
        {
            _effective[name] = Canonical(value);
            return value;
        }

        string range = (min, max, minExclusive) switch
        {
            (0, double.PositiveInfinity, true) => "a positive number",
            (0, double.PositiveInfinity, false) => "a non-negative number",
            (0, 1, false) => "a number from 0 to 1",
            (double.NegativeInfinity, double.PositiveInfinity, _) => "a number",
            (_, double.PositiveInfinity, _) => $"a number {(minExclusive ? ">" : ">=")} {Canonical(min)}",
            _ => $"a number from {Canonical(min)}{(minExclusive ? " (excluded)" : "")} to {Canonical(max)}",
        };
        Problem(name, $"expected {range}, got '{raw}'");
        return defaultValue;
    }

    /// <summary>A probability-like rate in [0, 1).</summary>
    public double Rate(string name, double defaultValue, string description)
    {
        string? raw = Declare(name, Canonical(defaultValue), description);
        if (raw is null) return defaultValue;
        if (double.TryParse(raw.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value >= 0 && value < 1)
        {
            _effective[name] = Canonical(value);
            return value;
        }

        Problem(name, $"expected a rate in [0, 1), got '{raw}'");
        return defaultValue;
    }

    /// <summary><c>true</c> or <c>false</c> (case-insensitive).</summary>
    public bool Bool(string name, bool defaultValue, string description)
    {
        string? raw = Declare(name, defaultValue ? "true" : "false", description);
        if (raw is null) return defaultValue;
        switch (raw.Trim().ToLowerInvariant())
        {
            case "true":
                _effective[name] = "true";
                return true;
            case "false":
                _effective[name] = "false";
                return false;
            default:
                Problem(name, $"expected true or false, got '{raw}'");
                return defaultValue;
        }
    }

    /// <summary>One of <paramref name="allowed"/> (case-insensitive; the canonical spelling is the one listed).</summary>
    public string Choice(string name, string defaultValue, string description, params string[] allowed)
    {
        string? raw = Declare(name, defaultValue, description + " (one of: " + string.Join(", ", allowed) + ")");
        if (raw is null) return defaultValue;
        string normalized = string.Concat(raw.Where(c => !char.IsWhiteSpace(c)));
        foreach (string a in allowed)
        {
            if (string.Equals(a, normalized, StringComparison.OrdinalIgnoreCase))
            {
                _effective[name] = a;
                return a;
            }
        }

        Problem(name, $"expected one of {string.Join(", ", allowed.Select(a => "'" + a + "'"))}, got '{raw}'");
        return defaultValue;
    }

    /// <summary>Records the canonical spelling of an option a method parsed itself (e.g. from <see cref="Text"/>).</summary>
    public void SetCanonical(string name, string value)
    {
        if (_effective.ContainsKey(name)) _effective[name] = value;
    }

    /// <summary>Free text; <paramref name="defaultValue"/> null means "not set" (canonical empty string).</summary>
    public string? Text(string name, string? defaultValue, string description)
    {
        string? raw = Declare(name, defaultValue ?? "", description);
        if (raw is null) return defaultValue;
        _effective[name] = raw;
        return raw.Length == 0 ? null : raw;
    }

    /// <summary>Throws <see cref="PeftOptionsException"/> if an option is unknown or a value is invalid (all problems at once).</summary>
    public void Finish()
    {
        var problems = Check();
        if (problems.Count > 0)
        {
            throw new PeftOptionsException(Method, problems);
        }
    }

    /// <summary>Every problem so far, unknown options included.</summary>
    public IReadOnlyList<string> Check()
    {
        var problems = new List<string>(_problems);
        var known = _declared.Select(d => d.Name).ToArray();
        foreach (string key in _given.Keys.Where(k => !known.Contains(k, StringComparer.Ordinal)).Order(StringComparer.Ordinal))
        {
            string? close = Closest(key, known);
            string allowed = known.Length == 0 ? $"{Method} takes no options" : "allowed: " + string.Join(", ", known);
            problems.Add($"{_path}.{key}: unknown option '{key}' for method '{Method}'{(close is null ? "" : $" (did you mean '{close}'?)")}; {allowed}");
        }

        return problems;
    }

    private string? Declare(string name, string defaultValue, string description)
    {
        _declared.Add(new PeftOptionInfo(name, defaultValue, description));
        _effective[name] = defaultValue;
        return _given.TryGetValue(name, out string? raw) ? raw ?? "" : null;
    }

    /// <summary>Canonical (round-trip, invariant) spelling of a number.</summary>
    public static string Canonical(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string? Closest(string name, IReadOnlyList<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string c in candidates)
        {
            int d = Levenshtein(name.ToLowerInvariant(), c.ToLowerInvariant());
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
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
