namespace Orchestrator.Core.Specs;

/// <summary>One problem in a spec, located by the field's path (for example <c>grid.sizes[1]</c>).</summary>
public sealed record SpecError(string Path, string Message, int? Line = null)
{
    public override string ToString() =>
        Line is { } l ? $"{Path} (line {l}): {Message}" : $"{Path}: {Message}";
}

/// <summary>A spec was refused; <see cref="Errors"/> lists every problem found, each with its field path.</summary>
public sealed class SpecValidationException : Exception
{
    public SpecValidationException(string source, IReadOnlyList<SpecError> errors)
        : base(BuildMessage(source, errors))
    {
        Source = source;
        Errors = errors;
    }

    /// <summary>The spec file (or "&lt;inline&gt;") that was refused.</summary>
    public new string Source { get; }

    public IReadOnlyList<SpecError> Errors { get; }

    /// <summary>The message lists the first <see cref="SpecLimits.MaxListedErrors"/> problems and counts the rest.</summary>
    private static string BuildMessage(string source, IReadOnlyList<SpecError> errors) =>
        $"Invalid sweep spec {SpecLimits.Quote(source)}: {errors.Count} problem(s)" + Environment.NewLine +
        string.Join(Environment.NewLine, errors.Take(SpecLimits.MaxListedErrors).Select(e => "  - " + e)) +
        (errors.Count > SpecLimits.MaxListedErrors ? $"{Environment.NewLine}  … and {errors.Count - SpecLimits.MaxListedErrors} more" : "");
}
