using System.Globalization;
using System.Text.RegularExpressions;

namespace Orchestrator.Deploy.Tests;

/// <summary>
/// Everything the deployment files may refer to (facts from the sources, the images deploy/docker builds) and
/// the checks shared by compose and Kubernetes: image references, invocations (entry point + arguments) and
/// environment variables. Every check returns problems as text ("file: what is wrong"); none means fine.
/// </summary>
public sealed partial class Deployment
{
    private Deployment(IRepoFiles repo, ProjectFacts facts, List<ProjectImage> images, Dictionary<string, DockerfileFacts> dockerfiles, List<string> problems)
    {
        Repo = repo;
        Facts = facts;
        Images = images;
        Dockerfiles = dockerfiles;
        ImageProblems = problems;
    }

    public IRepoFiles Repo { get; }

    public ProjectFacts Facts { get; }

    public IReadOnlyList<ProjectImage> Images { get; }

    public IReadOnlyDictionary<string, DockerfileFacts> Dockerfiles { get; }

    /// <summary>Problems of deploy/docker (Dockerfiles, README build commands) and inconsistencies of the sources they rely on.</summary>
    public IReadOnlyList<string> ImageProblems { get; }

    public static Deployment Load(IRepoFiles repo)
    {
        var facts = ProjectFacts.Load(repo);
        var problems = new List<string>(facts.Problems);
        var dockerfiles = repo.Files(Tests.Images.DockerFolder, "Dockerfile*")
            .Where(f => !f.EndsWith(".dockerignore", StringComparison.Ordinal))
            .ToDictionary(f => f, f => Tests.Images.CheckDockerfile(repo, facts, f, problems), StringComparer.Ordinal);
        if (dockerfiles.Count == 0)
        {
            problems.Add($"{Tests.Images.DockerFolder}: no Dockerfile");
        }

        var images = Tests.Images.Catalog(repo, problems);
        foreach (var group in images.GroupBy(i => i.Name, StringComparer.Ordinal).Where(g => g.Select(i => (i.Dockerfile, Args: Describe(i.BuildArgs))).Distinct().Count() > 1))
        {
            problems.Add($"{Tests.Images.DockerReadme}: image {group.Key} is built in different ways");
        }

        foreach (var image in images.Where(i => dockerfiles.ContainsKey(i.Dockerfile)))
        {
            var dockerfile = dockerfiles[image.Dockerfile];
            var declared = dockerfile.File.GlobalArgs.Keys.Concat(dockerfile.File.Stages.SelectMany(s => s.All("ARG")).Select(a => Dockerfile.Arg(a).Name)).ToHashSet(StringComparer.Ordinal);
            foreach (var arg in image.BuildArgs.Keys.Where(a => !declared.Contains(a)))
            {
                problems.Add($"{Tests.Images.DockerReadme}: image {image.Name}: --build-arg {arg} is not an ARG of {image.Dockerfile}");
            }
        }

        var deployment = new Deployment(repo, facts, images, dockerfiles, problems);
        foreach (var image in images)
        {
            if (deployment.TorchBackendOf(image) is { } backend && !facts.TorchBackends.Contains(backend))
            {
                problems.Add($"{Tests.Images.DockerReadme}: image {image.Name}: torch backend '{backend}' is not one of {string.Join(", ", facts.TorchBackends)} (Directory.Build.targets)");
            }
        }

        foreach (var dockerfile in dockerfiles.Keys.Where(f => images.All(i => i.Dockerfile != f)))
        {
            problems.Add($"{Tests.Images.DockerReadme}: no `docker build -f {dockerfile} -t …` command for {dockerfile}");
        }

        return deployment;
    }

    private static string Describe(IReadOnlyDictionary<string, string> args) => string.Join(",", args.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}={a.Value}"));

    public ProjectImage? FindImage(string reference)
    {
        var name = Tests.Images.SplitTag(reference).Name;
        return Images.FirstOrDefault(i => i.Name == name);
    }

    /// <summary>The assembly an image runs (Orchestrator.Silo.dll, orchestrator.dll), from its Dockerfile.</summary>
    public string? AssemblyOf(ProjectImage image) => Dockerfiles.TryGetValue(image.Dockerfile, out var d) ? d.EntryAssembly : null;

    /// <summary>The torch backend an image is built with: the value -p:TorchBackend gets in its Dockerfile.</summary>
    public string? TorchBackendOf(ProjectImage image)
    {
        if (!Dockerfiles.TryGetValue(image.Dockerfile, out var dockerfile))
        {
            return null;
        }

        var args = dockerfile.EffectiveArgs(image.BuildArgs);
        foreach (var run in dockerfile.File.Stages.SelectMany(s => s.All("RUN")))
        {
            if (TorchBackendProperty().Match(run.Arguments) is { Success: true } m)
            {
                return VariableReference().Replace(m.Groups[1].Value, v => args.GetValueOrDefault(v.Groups[1].Success ? v.Groups[1].Value : v.Groups[2].Value) ?? "");
            }
        }

        return null; // no -p:TorchBackend: the build's default (Directory.Build.props), or no torch at all
    }

    /// <summary>Null when the image is one the project builds or a pinned official base image; else the problem.</summary>
    public string? ImageProblem(string? image, out ProjectImage? project)
    {
        project = null;
        if (string.IsNullOrWhiteSpace(image))
        {
            return "no image";
        }

        project = FindImage(image);
        if (project is not null)
        {
            return null;
        }

        // The project's own names: a typo in one must not pass for an official image of that name.
        return Tests.Images.SplitTag(image).Name.StartsWith("orchestrator", StringComparison.Ordinal)
            ? $"image '{image}' is not one the project builds (deploy/docker/README.md builds {string.Join(", ", Images.Select(i => i.Name).Distinct())})"
            : Tests.Images.OfficialBaseProblem(image);
    }

    /// <summary>
    /// Checks what a container runs: an entry-point override (compose entrypoint, Kubernetes command) and the
    /// arguments. Silo arguments must be switches of Program.cs (with values of the right type); CLI arguments
    /// a command path of the CLI and its options. Switch values land in <paramref name="settings"/>.
    /// </summary>
    public void CheckInvocation(string where, ProjectImage image, IReadOnlyList<string>? entrypoint, IReadOnlyList<string> args,
        List<string> problems, IDictionary<string, string?> settings)
    {
        var assembly = AssemblyOf(image);
        var words = new List<string>(args);
        if (entrypoint is { Count: > 0 })
        {
            if (entrypoint[0] == "dotnet" && entrypoint.Count >= 2)
            {
                var dll = Path.GetFileName(entrypoint[1]);
                if (dll != assembly)
                {
                    problems.Add($"{where}: runs {entrypoint[1]}, but image {image.Name} contains {assembly ?? "no known assembly"}");
                    return;
                }

                words = [.. entrypoint.Skip(2), .. args];
            }
            else if (AllowedUtilities.Contains(entrypoint[0]))
            {
                return;
            }
            else
            {
                problems.Add($"{where}: entry point '{string.Join(' ', entrypoint)}' does not run a project output (dotnet {assembly})");
                return;
            }
        }

        if (assembly == Facts.SiloAssembly)
        {
            CheckSiloArguments(where, words, problems, settings);
        }
        else if (assembly == Facts.CliAssembly)
        {
            CheckCliArguments(where, words, problems);
        }
    }

    /// <summary>Commands of the base image a container may run instead of the project's (keeping a pod up for exec).</summary>
    private static readonly HashSet<string> AllowedUtilities = new(StringComparer.Ordinal) { "sleep" };

    public void CheckSiloArguments(string where, IReadOnlyList<string> words, List<string> problems, IDictionary<string, string?> settings)
    {
        for (var i = 0; i < words.Count; i++)
        {
            var word = words[i];
            if (!Facts.SiloSwitches.TryGetValue(word, out var key))
            {
                problems.Add($"{where}: '{word}' is not a switch of {ProjectFacts.SiloProgram} (known: {string.Join(' ', Facts.SiloSwitches.Keys)})");
                continue;
            }

            string? value;
            if (i + 1 < words.Count && !words[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = words[++i];
            }
            else if (Facts.SiloFlagSwitches.Contains(word))
            {
                value = "true";
            }
            else
            {
                problems.Add($"{where}: {word} needs a value");
                continue;
            }

            if (Facts.SiloConfigKeys.TryGetValue(key, out var config))
            {
                CheckValue(where, word, config, value, problems);
            }

            settings[key] = value;
        }
    }

    public void CheckCliArguments(string where, IReadOnlyList<string> words, List<string> problems)
    {
        if (words.Count == 0 || words[0].StartsWith('-'))
        {
            problems.Add($"{where}: the CLI needs a command (known: {string.Join(' ', Facts.CliCommands.Order(StringComparer.Ordinal))})");
            return;
        }

        if (!Facts.CliCommands.Contains(words[0]))
        {
            problems.Add($"{where}: '{words[0]}' is not a command of the CLI (known: {string.Join(' ', Facts.CliCommands.Order(StringComparer.Ordinal))})");
            return;
        }

        if (Facts.CliSubcommands.TryGetValue(words[0], out var children))
        {
            if (words.Count < 2 || !children.Contains(words[1]))
            {
                problems.Add($"{where}: '{words[0]} {(words.Count > 1 ? words[1] : "")}'. {words[0]} has the subcommands {string.Join(' ', children)}");
                return;
            }
        }

        foreach (var option in words.Where(w => w.StartsWith("--", StringComparison.Ordinal)))
        {
            var name = option.Split('=')[0];
            if (!Facts.CliOptions.Contains(name))
            {
                problems.Add($"{where}: '{name}' is not an option of the CLI");
            }
        }
    }

    /// <summary>
    /// An environment variable of a container running <paramref name="assembly"/>. ORCHESTRATOR_… variables must be
    /// read by that program: for the silo a configuration key (ORCHESTRATOR_Worker__Slots → Worker:Slots) or a
    /// variable it reads directly; for the CLI one it reads. Literal values must parse as the property's type.
    /// </summary>
    public void CheckEnvironment(string where, string? assembly, string name, string? value, List<string> problems, IDictionary<string, string?> settings)
    {
        const string Family = "ORCHESTRATOR_";
        if (!name.StartsWith(Family, StringComparison.Ordinal) || assembly is null)
        {
            return;
        }

        if (assembly == Facts.SiloAssembly)
        {
            if (Facts.SiloDirectEnvironment.Contains(name))
            {
                return;
            }

            var prefix = Facts.SiloEnvironmentPrefix;
            var key = name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..].Replace("__", ":", StringComparison.Ordinal) : null;
            if (key is null || !Facts.SiloConfigKeys.TryGetValue(key, out var config))
            {
                var known = Facts.SiloConfigKeys.Keys.Select(k => prefix + k.Replace(":", "__", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
                problems.Add($"{where}: environment variable {name} is no configuration key of the silo (known: {string.Join(", ", known)})");
                return;
            }

            settings[config.Key] = value;
            if (value is not null)
            {
                CheckValue(where, name, config, value, problems);
            }
        }
        else if (assembly == Facts.CliAssembly && !Facts.CliEnvironment.Contains(name))
        {
            problems.Add($"{where}: environment variable {name} is not read by the CLI (it reads {string.Join(", ", Facts.CliEnvironment)})");
        }
    }

    private static void CheckValue(string where, string what, ConfigKey key, string value, List<string> problems)
    {
        if (value.StartsWith('$') || value.Contains("${", StringComparison.Ordinal) || value.Contains("$(", StringComparison.Ordinal))
        {
            return; // resolved at deployment time
        }

        var type = key.Type.TrimEnd('?');
        var ok = type switch
        {
            "int" => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            "bool" => bool.TryParse(value, out _),
            "double" => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
            "TimeSpan" => TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out _),
            _ => true,
        };
        if (!ok)
        {
            problems.Add($"{where}: {what}={value}: {key.Key} is a {key.Type}");
        }
        else if (key.EnumValues is { } allowed
                 && !allowed.Contains(value, type == "string" ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase))
        {
            problems.Add($"{where}: {what}={value}: {key.Key} must be one of {string.Join(", ", allowed)}");
        }
    }

    /// <summary>The silo's ports given its settings (switches and environment), else the ClusterSiloOptions defaults.</summary>
    public (int Silo, int Gateway) SiloPorts(IDictionary<string, string?> settings) =>
        (Port(settings, "SiloPort", Facts.DefaultSiloPort), Port(settings, "GatewayPort", Facts.DefaultGatewayPort));

    private static int Port(IDictionary<string, string?> settings, string key, int fallback) =>
        settings.FirstOrDefault(s => s.Key.Equals(key, StringComparison.OrdinalIgnoreCase)).Value is { } v
        && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) ? port : fallback;

    public static string? Setting(IDictionary<string, string?> settings, string key) =>
        settings.FirstOrDefault(s => s.Key.Equals(key, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>Host and Port of an Npgsql connection string (Port defaults to 5432).</summary>
    public static (string? Host, int Port) ConnectionTarget(string connection)
    {
        string? host = null;
        var port = 5432;
        foreach (var part in connection.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2)
            {
                continue;
            }

            var name = kv[0].Trim().ToLowerInvariant();
            if (name is "host" or "server")
            {
                host = kv[1].Trim();
            }
            else if (name == "port" && int.TryParse(kv[1].Trim(), out var p))
            {
                port = p;
            }
        }

        return (host, port);
    }

    [GeneratedRegex(@"-p:TorchBackend=(\S+)")]
    private static partial Regex TorchBackendProperty();

    [GeneratedRegex(@"\$\{(\w+)\}|\$(\w+)")]
    private static partial Regex VariableReference();
}
