using System.Text.RegularExpressions;

namespace Orchestrator.Deploy.Tests;

/// <summary>A configuration key the silo binds, with the C# type of the property behind it.</summary>
public sealed record ConfigKey(string Key, string Type, IReadOnlyList<string>? EnumValues = null);

/// <summary>
/// What the deployment files may name, read from the sources (never a hand-written list): the silo's switches
/// and configuration keys, the CLI's commands, options and environment variables, the port defaults, the
/// assembly each project builds and the torch backends the build knows.
/// </summary>
public sealed partial class ProjectFacts
{
    public const string SiloProgram = "src/Orchestrator.Silo/Program.cs";
    public const string SiloProject = "src/Orchestrator.Silo/Orchestrator.Silo.csproj";
    public const string CliProject = "src/Orchestrator.Cli/Orchestrator.Cli.csproj";

    /// <summary>Silo switch → configuration key (the switch table of src/Orchestrator.Silo/Program.cs).</summary>
    public required IReadOnlyDictionary<string, string> SiloSwitches { get; init; }

    /// <summary>Switches that take no value (e.g. --fast-membership).</summary>
    public required IReadOnlySet<string> SiloFlagSwitches { get; init; }

    /// <summary>Configuration keys ("Worker:Slots") the silo reads, case-insensitive as .NET configuration is.</summary>
    public required IReadOnlyDictionary<string, ConfigKey> SiloConfigKeys { get; init; }

    /// <summary>Prefix of the silo's environment configuration source ("ORCHESTRATOR_").</summary>
    public required string SiloEnvironmentPrefix { get; init; }

    /// <summary>Environment variables the silo reads directly (Environment.GetEnvironmentVariable).</summary>
    public required IReadOnlySet<string> SiloDirectEnvironment { get; init; }

    /// <summary>Top-level CLI commands, and the subcommands of command groups (db → migrate).</summary>
    public required IReadOnlySet<string> CliCommands { get; init; }

    public required IReadOnlyDictionary<string, IReadOnlySet<string>> CliSubcommands { get; init; }

    public required IReadOnlySet<string> CliOptions { get; init; }

    public required IReadOnlySet<string> CliEnvironment { get; init; }

    public required int DefaultSiloPort { get; init; }

    public required int DefaultGatewayPort { get; init; }

    /// <summary>Project file → assembly file it builds ("orchestrator.dll").</summary>
    public required IReadOnlyDictionary<string, string> Assemblies { get; init; }

    public required IReadOnlySet<string> TorchBackends { get; init; }

    /// <summary>Inconsistencies found while reading the sources (a switch mapped to a key nothing binds).</summary>
    public required IReadOnlyList<string> Problems { get; init; }

    public string SiloAssembly => Assemblies[SiloProject];

    public string CliAssembly => Assemblies[CliProject];

    public static ProjectFacts Load(IRepoFiles repo)
    {
        var program = repo.Read(SiloProgram);
        var switches = SwitchEntry().Matches(program).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);
        var flags = FlagSwitch().Matches(program).Select(m => m.Groups[1].Value).Where(switches.ContainsKey).ToHashSet(StringComparer.Ordinal);

        var sources = repo.Files("src", "*.cs").ToDictionary(f => f, repo.Read, StringComparer.Ordinal);
        var enums = EnumDeclaration().Matches(string.Join('\n', sources.Values))
            .GroupBy(m => m.Groups[1].Value, StringComparer.Ordinal)
            .ToDictionary(
                g => g.Key,
                g => (IReadOnlyList<string>)g.First().Groups[2].Value.Split(',')
                    .Select(member => EnumMember().Match(LineComment().Replace(member, "")) is { Success: true } name ? name.Groups[1].Value : "")
                    .Where(name => name.Length > 0)
                    .ToList(),
                StringComparer.Ordinal);

        // Which class each bound variable of Program.cs is, and where it is bound.
        var variables = NewObject().Matches(program).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);
        var bindings = new List<(string Prefix, string Variable)>();
        bindings.AddRange(RootBind().Matches(program).Select(m => ("", m.Groups[1].Value)));
        bindings.AddRange(SectionBind().Matches(program).Select(m => (m.Groups[1].Value + ":", m.Groups[2].Value)));
        var keys = new Dictionary<string, ConfigKey>(StringComparer.OrdinalIgnoreCase);
        int? siloPort = null, gatewayPort = null;
        foreach (var (prefix, variable) in bindings)
        {
            var className = variables[variable];
            var classSource = sources.Values.FirstOrDefault(s => Regex.IsMatch(s, $@"\bclass\s+{className}\b"))
                ?? throw new InvalidOperationException($"class {className} (bound in {SiloProgram}) not found under src/");
            // Properties assigned after binding are overwritten: binding them from configuration has no effect.
            var overwritten = Regex.Matches(program, $@"\b{variable}\.(\w+)\s*=[^=]").Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
            foreach (Match p in SettableProperty().Matches(classSource))
            {
                var (type, name) = (p.Groups["type"].Value, p.Groups["name"].Value);
                if (overwritten.Contains(name))
                {
                    continue;
                }

                // Allowed values: an enum's members, or the list a Validate() method checks (`X is not ("a" or "b")`).
                var allowed = enums.GetValueOrDefault(type.TrimEnd('?'))
                    ?? (Regex.Match(classSource, $@"\b{name}\s+is\s+not\s+\(((?:\s*""[^""]*""\s*(?:or)?)+)\)") is { Success: true } check
                        ? Regex.Matches(check.Groups[1].Value, @"""([^""]*)""").Select(v => v.Groups[1].Value).ToList()
                        : null);
                keys[prefix + name] = new ConfigKey(prefix + name, type, allowed);
                if (prefix.Length == 0 && p.Groups["default"].Success && int.TryParse(p.Groups["default"].Value.Trim(), out var value))
                {
                    if (name == "SiloPort")
                    {
                        siloPort = value;
                    }
                    else if (name == "GatewayPort")
                    {
                        gatewayPort = value;
                    }
                }
            }
        }

        foreach (Match m in ConnectionStringRead().Matches(program))
        {
            keys[$"ConnectionStrings:{m.Groups[1].Value}"] = new ConfigKey($"ConnectionStrings:{m.Groups[1].Value}", "string");
        }

        foreach (Match m in IndexerRead().Matches(program))
        {
            keys[m.Groups[1].Value] = new ConfigKey(m.Groups[1].Value, "string");
        }

        var problems = switches.Where(s => !keys.ContainsKey(s.Value))
            .Select(s => $"{SiloProgram}: switch {s.Key} maps to '{s.Value}', which nothing binds")
            .ToList();

        var cliSources = repo.Files("src/Orchestrator.Cli", "*.cs").Select(repo.Read).ToList();
        var cliText = string.Join('\n', cliSources);
        // Several command files reuse a local name (e.g. `command`); the first definition of a name is kept, which is
        // enough to resolve the nested commands (`db migrate`) the deployment files use.
        var commandVariables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in CommandVariable().Matches(cliText))
        {
            commandVariables.TryAdd(m.Groups[1].Value, m.Groups[2].Value);
        }

        var children = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var nested = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in SubcommandAdd().Matches(cliText))
        {
            if (m.Groups[1].Value != "root" && commandVariables.TryGetValue(m.Groups[1].Value, out var parent)
                && commandVariables.TryGetValue(m.Groups[2].Value, out var child))
            {
                (children.TryGetValue(parent, out var set) ? set : children[parent] = new HashSet<string>(StringComparer.Ordinal)).Add(child);
                nested.Add(child);
            }
        }

        var commands = commandVariables.Values
            .Concat(MadeCommand().Matches(cliText).Select(m => m.Groups[1].Value))
            .Concat(TupleCommand().Matches(cliText).Select(m => m.Groups[1].Value))
            .Where(c => !nested.Contains(c))
            .ToHashSet(StringComparer.Ordinal);

        var assemblies = repo.Files("src", "*.csproj").ToDictionary(
            p => p,
            p => (AssemblyNameProperty().Match(repo.Read(p)) is { Success: true } a ? a.Groups[1].Value : System.IO.Path.GetFileNameWithoutExtension(p)) + ".dll",
            StringComparer.Ordinal);

        var backends = TorchBackendCondition().Matches(repo.Read("Directory.Build.targets")).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);

        return new ProjectFacts
        {
            SiloSwitches = switches,
            SiloFlagSwitches = flags,
            SiloConfigKeys = keys,
            SiloEnvironmentPrefix = EnvironmentPrefix().Match(program) is { Success: true } e ? e.Groups[1].Value : "",
            SiloDirectEnvironment = EnvironmentRead().Matches(program).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal),
            CliCommands = commands,
            CliSubcommands = children.ToDictionary(c => c.Key, c => (IReadOnlySet<string>)c.Value, StringComparer.Ordinal),
            CliOptions = CliOption().Matches(cliText).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal),
            CliEnvironment = EnvironmentRead().Matches(cliText).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal),
            DefaultSiloPort = siloPort ?? throw new InvalidOperationException("no SiloPort default found"),
            DefaultGatewayPort = gatewayPort ?? throw new InvalidOperationException("no GatewayPort default found"),
            Assemblies = assemblies,
            TorchBackends = backends,
            Problems = problems,
        };
    }

    [GeneratedRegex(@"\[""(--[a-z][a-z-]*)""\]\s*=\s*""([\w:]+)""")]
    private static partial Regex SwitchEntry();

    [GeneratedRegex(@"args\[i\]\s*==\s*""(--[a-z][a-z-]*)""")]
    private static partial Regex FlagSwitch();

    [GeneratedRegex(@"\benum\s+(\w+)\s*\{([^}]*)\}")]
    private static partial Regex EnumDeclaration();

    [GeneratedRegex(@"^\s*(\w+)")]
    private static partial Regex EnumMember();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex LineComment();

    [GeneratedRegex(@"\bvar\s+(\w+)\s*=\s*new\s+(\w+)\(\)\s*;")]
    private static partial Regex NewObject();

    [GeneratedRegex(@"\bconfig\.Bind\((\w+)\)")]
    private static partial Regex RootBind();

    [GeneratedRegex(@"\bconfig\.GetSection\(""(\w+)""\)\.Bind\((\w+)\)")]
    private static partial Regex SectionBind();

    [GeneratedRegex(@"public\s+(?<type>[\w.<>?\[\]]+)\s+(?<name>\w+)\s*\{\s*get;\s*set;\s*\}(\s*=\s*(?<default>[^;]+);)?")]
    private static partial Regex SettableProperty();

    [GeneratedRegex(@"\.GetConnectionString\(""(\w+)""\)")]
    private static partial Regex ConnectionStringRead();

    [GeneratedRegex(@"\bconfig\[""([\w:]+)""\]")]
    private static partial Regex IndexerRead();

    [GeneratedRegex(@"AddEnvironmentVariables\(""(\w+)""\)")]
    private static partial Regex EnvironmentPrefix();

    [GeneratedRegex(@"GetEnvironmentVariable\(""(\w+)""\)")]
    private static partial Regex EnvironmentRead();

    [GeneratedRegex(@"\bvar\s+(\w+)\s*=\s*new\s+Command\(""([\w-]+)""")]
    private static partial Regex CommandVariable();

    [GeneratedRegex(@"\b(\w+)\.Subcommands\.Add\((\w+)\)")]
    private static partial Regex SubcommandAdd();

    [GeneratedRegex(@"\bMake\(""([\w-]+)""")]
    private static partial Regex MadeCommand();

    // The (name, description, flag) tuples of a foreach that registers several commands the same way.
    [GeneratedRegex(@"^\s*\(""([a-z][\w-]*)"",\s*""", RegexOptions.Multiline)]
    private static partial Regex TupleCommand();

    [GeneratedRegex(@"new\s+Option<[^>]+>\(""(--[a-z][\w-]*)""")]
    private static partial Regex CliOption();

    [GeneratedRegex(@"<AssemblyName>([^<]+)</AssemblyName>")]
    private static partial Regex AssemblyNameProperty();

    [GeneratedRegex(@"'\$\(TorchBackend\)'\s*==\s*'(\w+)'")]
    private static partial Regex TorchBackendCondition();
}
