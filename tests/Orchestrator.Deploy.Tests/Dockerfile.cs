using System.Text.Json;
using System.Text.RegularExpressions;

namespace Orchestrator.Deploy.Tests;

public sealed record DockerInstruction(string Keyword, string Arguments, int Line)
{
    /// <summary>Leading --flag=value options (COPY --from=…, RUN --mount=…), and the rest.</summary>
    public (Dictionary<string, string> Flags, string Text) SplitFlags()
    {
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        var rest = Arguments.TrimStart();
        while (rest.StartsWith("--", StringComparison.Ordinal))
        {
            var end = rest.IndexOfAny([' ', '\t']);
            var flag = end < 0 ? rest : rest[..end];
            var eq = flag.IndexOf('=');
            flags[eq < 0 ? flag[2..] : flag[2..eq]] = eq < 0 ? "" : flag[(eq + 1)..];
            rest = end < 0 ? "" : rest[end..].TrimStart();
        }

        return (flags, rest);
    }

    /// <summary>The exec form (JSON array) as a list, or the shell form as /bin/sh -c.</summary>
    public IReadOnlyList<string> CommandWords()
    {
        var text = Arguments.Trim();
        return text.StartsWith('[') ? JsonSerializer.Deserialize<List<string>>(text) ?? [] : ["/bin/sh", "-c", text];
    }
}

public sealed class DockerStage
{
    public required int Index { get; init; }

    public required string Image { get; init; }

    public string? Name { get; init; }

    public required int Line { get; init; }

    public List<DockerInstruction> Instructions { get; } = [];

    public IEnumerable<DockerInstruction> All(string keyword) => Instructions.Where(i => i.Keyword == keyword);
}

/// <summary>A Dockerfile split into global ARGs and stages (continuation lines joined, comments dropped).</summary>
public sealed partial class Dockerfile
{
    public required string Path { get; init; }

    public Dictionary<string, string?> GlobalArgs { get; } = new(StringComparer.Ordinal);

    public List<DockerStage> Stages { get; } = [];

    public DockerStage Final => Stages[^1];

    public static Dockerfile Parse(string path, string text)
    {
        var file = new Dockerfile { Path = path };
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var start = i + 1;
            var joined = line;
            while (joined.EndsWith('\\') && i + 1 < lines.Length)
            {
                joined = joined[..^1];
                var next = lines[++i].Trim();
                if (!next.StartsWith('#'))
                {
                    joined += " " + next;
                }
            }

            var match = InstructionLine().Match(joined);
            if (!match.Success)
            {
                throw new FormatException($"{path}:{start}: not an instruction: {joined}");
            }

            var instruction = new DockerInstruction(match.Groups[1].Value.ToUpperInvariant(), match.Groups[2].Value.Trim(), start);
            if (instruction.Keyword == "FROM")
            {
                var words = instruction.SplitFlags().Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                file.Stages.Add(new DockerStage
                {
                    Index = file.Stages.Count,
                    Image = words[0],
                    Name = words.Length >= 3 && words[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? words[2] : null,
                    Line = start,
                });
            }
            else if (file.Stages.Count == 0)
            {
                if (instruction.Keyword != "ARG")
                {
                    throw new FormatException($"{path}:{start}: only ARG may come before the first FROM");
                }

                var (name, value) = Arg(instruction);
                file.GlobalArgs[name] = value;
            }
            else
            {
                file.Stages[^1].Instructions.Add(instruction);
            }
        }

        if (file.Stages.Count == 0)
        {
            throw new FormatException($"{path}: no FROM");
        }

        return file;
    }

    public static (string Name, string? Default) Arg(DockerInstruction arg)
    {
        var eq = arg.Arguments.IndexOf('=');
        return eq < 0 ? (arg.Arguments.Trim(), null) : (arg.Arguments[..eq].Trim(), arg.Arguments[(eq + 1)..].Trim().Trim('"'));
    }

    /// <summary>Names of variables an instruction uses ($NAME or ${NAME…}).</summary>
    public static IEnumerable<string> Variables(string text) => VariableUse().Matches(text).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value);

    [GeneratedRegex(@"^([A-Za-z]+)\s+(.*)$", RegexOptions.Singleline)]
    private static partial Regex InstructionLine();

    [GeneratedRegex(@"\$\{(\w+)[^}]*\}|\$(\w+)")]
    private static partial Regex VariableUse();
}
