using System.Text.RegularExpressions;

namespace Orchestrator.Deploy.Tests;

/// <summary>An image the project builds: a `docker build` command of deploy/docker/README.md.</summary>
public sealed record ProjectImage(string Name, string Dockerfile, IReadOnlyDictionary<string, string> BuildArgs);

/// <summary>What a Dockerfile of deploy/docker produces, as far as the checks need it.</summary>
public sealed record DockerfileFacts(string Path, Dockerfile File, string? EntryAssembly, IReadOnlySet<int> Exposed)
{
    /// <summary>ARG defaults (global, then final stage) overridden by the given build arguments.</summary>
    public IReadOnlyDictionary<string, string?> EffectiveArgs(IReadOnlyDictionary<string, string> buildArgs)
    {
        var args = new Dictionary<string, string?>(File.GlobalArgs, StringComparer.Ordinal);
        foreach (var (name, value) in buildArgs)
        {
            args[name] = value;
        }

        return args;
    }
}

/// <summary>Checks of deploy/docker: the Dockerfiles, the .dockerignore and the image names of the README.</summary>
public static partial class Images
{
    public const string DockerFolder = "deploy/docker";
    public const string DockerReadme = "deploy/docker/README.md";

    private static readonly HashSet<string> MicrosoftDotnetImages = new(StringComparer.Ordinal)
    {
        "mcr.microsoft.com/dotnet/sdk", "mcr.microsoft.com/dotnet/runtime", "mcr.microsoft.com/dotnet/aspnet", "mcr.microsoft.com/dotnet/runtime-deps",
    };

    /// <summary>
    /// An official base image, pinned: a Docker Official Image (one path component: postgres:17) or a .NET image
    /// from mcr.microsoft.com, with an explicit tag other than latest. Returns null when fine, else why not.
    /// </summary>
    public static string? OfficialBaseProblem(string image)
    {
        var (name, tag) = SplitTag(image);
        var official = MicrosoftDotnetImages.Contains(name) || OfficialLibraryName().IsMatch(name);
        if (!official)
        {
            return $"image '{image}' is neither an official base image (a Docker Official Image such as postgres, or mcr.microsoft.com/dotnet/*) nor one the project builds (deploy/docker/README.md)";
        }

        return tag is null or "latest" ? $"base image '{image}' must be pinned to a version tag (not latest)" : null;
    }

    public static (string Name, string? Tag) SplitTag(string image)
    {
        var at = image.IndexOf('@');
        if (at >= 0)
        {
            image = image[..at];
        }

        var slash = image.LastIndexOf('/');
        var colon = image.LastIndexOf(':');
        return colon > slash ? (image[..colon], image[(colon + 1)..]) : (image, null);
    }

    /// <summary>The images the README builds: `docker build -f deploy/docker/X [--build-arg K=V] -t NAME[:TAG] .`.</summary>
    public static List<ProjectImage> Catalog(IRepoFiles repo, List<string> problems)
    {
        var images = new List<ProjectImage>();
        if (!repo.Exists(DockerReadme))
        {
            problems.Add($"{DockerReadme}: missing (it holds the build command of each image)");
            return images;
        }

        foreach (var command in ShellCommands(repo.Read(DockerReadme)).Where(c => c.Count > 2 && c[0] == "docker" && c[1] == "build"))
        {
            string? file = null, tag = null, context = null;
            var args = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 2; i < command.Count; i++)
            {
                switch (command[i])
                {
                    case "-f" or "--file" when i + 1 < command.Count: file = command[++i]; break;
                    case "-t" or "--tag" when i + 1 < command.Count: tag = command[++i]; break;
                    case "--build-arg" when i + 1 < command.Count:
                        var kv = command[++i].Split('=', 2);
                        args[kv[0]] = kv.Length == 2 ? kv[1] : "";
                        break;
                    default:
                        if (!command[i].StartsWith('-'))
                        {
                            context = command[i];
                        }

                        break;
                }
            }

            var text = string.Join(' ', command);
            if (file is null || tag is null)
            {
                problems.Add($"{DockerReadme}: `{text}` needs -f <Dockerfile> and -t <name>");
                continue;
            }

            if (context != ".")
            {
                problems.Add($"{DockerReadme}: `{text}`: the build context must be the repository root ('.'): the Dockerfiles copy src/, build/, ...");
            }

            if (!repo.Exists(file))
            {
                problems.Add($"{DockerReadme}: `{text}`: {file} does not exist");
            }

            images.Add(new ProjectImage(SplitTag(tag).Name, RepoPath.Normalize(file), args));
        }

        return images;
    }

    /// <summary>Checks one Dockerfile (base images, COPY sources, ARG scoping, publish, entry point, ports).</summary>
    public static DockerfileFacts CheckDockerfile(IRepoFiles repo, ProjectFacts facts, string path, List<string> problems)
    {
        Dockerfile file;
        try
        {
            file = Dockerfile.Parse(path, repo.Read(path));
        }
        catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException)
        {
            problems.Add(ex.Message);
            return new DockerfileFacts(path, Dockerfile.Parse(path, "FROM scratch"), null, new HashSet<int>());
        }

        var ignore = DockerIgnore.Load(repo, path);
        var published = new List<(DockerStage Stage, string Project, string Output)>();
        foreach (var stage in file.Stages)
        {
            var earlier = file.Stages.Take(stage.Index).Select(s => s.Name).OfType<string>().ToHashSet(StringComparer.Ordinal);
            var image = Expand(stage.Image, file.GlobalArgs);
            if (!earlier.Contains(image) && OfficialBaseProblem(image) is { } baseProblem)
            {
                problems.Add($"{path}:{stage.Line}: FROM {baseProblem}");
            }

            var declared = new HashSet<string>(StringComparer.Ordinal);
            var workdir = "/";
            foreach (var instruction in stage.Instructions)
            {
                if (instruction.Keyword == "ARG")
                {
                    declared.Add(Dockerfile.Arg(instruction).Name);
                    continue;
                }

                foreach (var variable in Dockerfile.Variables(instruction.Arguments).Distinct())
                {
                    if (file.GlobalArgs.ContainsKey(variable) && !declared.Contains(variable))
                    {
                        problems.Add($"{path}:{instruction.Line}: {instruction.Keyword} uses ${variable}, a global ARG not redeclared in this stage (`ARG {variable}`), so it is empty here");
                    }
                }

                switch (instruction.Keyword)
                {
                    case "WORKDIR":
                        workdir = instruction.Arguments.StartsWith('/') ? instruction.Arguments : $"{workdir.TrimEnd('/')}/{instruction.Arguments}";
                        break;
                    case "COPY" or "ADD":
                        var (flags, rest) = instruction.SplitFlags();
                        IReadOnlyList<string> words = rest.StartsWith('[')
                            ? (instruction with { Arguments = rest }).CommandWords()
                            : rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        if (words.Count < 2)
                        {
                            problems.Add($"{path}:{instruction.Line}: {instruction.Keyword} needs a source and a destination");
                            break;
                        }

                        if (flags.TryGetValue("from", out var from))
                        {
                            if (!earlier.Contains(from) && !(int.TryParse(from, out var index) && index < stage.Index))
                            {
                                problems.Add($"{path}:{instruction.Line}: COPY --from={from}: no earlier stage of that name");
                            }

                            break;
                        }

                        foreach (var source in words.Take(words.Count - 1))
                        {
                            var relative = RepoPath.Normalize(source);
                            if (!repo.Exists(relative))
                            {
                                problems.Add($"{path}:{instruction.Line}: {instruction.Keyword} source '{source}' does not exist in the repository (the build context is its root)");
                            }
                            else if (ignore.Excludes(relative))
                            {
                                problems.Add($"{path}:{instruction.Line}: {instruction.Keyword} source '{source}' is excluded from the build context by {ignore.Source}");
                            }
                        }

                        break;
                    case "RUN":
                        foreach (Match publish in DotnetPublish().Matches(instruction.Arguments))
                        {
                            var project = RepoPath.Normalize(publish.Groups[1].Value);
                            if (!project.EndsWith(".csproj", StringComparison.Ordinal))
                            {
                                project = repo.Files(project, "*.csproj").FirstOrDefault() ?? project;
                            }

                            if (!repo.Exists(project) || !facts.Assemblies.ContainsKey(project))
                            {
                                problems.Add($"{path}:{instruction.Line}: dotnet publish {publish.Groups[1].Value}: no such project under src/");
                                continue;
                            }

                            var copied = stage.Instructions.TakeWhile(i => i != instruction)
                                .Where(i => i.Keyword is "COPY" or "ADD" && !i.SplitFlags().Flags.ContainsKey("from"))
                                .SelectMany(i => i.SplitFlags().Text.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipLast(1))
                                .Select(RepoPath.Normalize)
                                .ToList();
                            foreach (var needed in BuildInputs(repo, project).Where(n => !copied.Any(c => n == c || n.StartsWith(c + "/", StringComparison.Ordinal))))
                            {
                                problems.Add($"{path}:{instruction.Line}: dotnet publish {project} needs {needed}, which is not copied into this stage before");
                            }

                            var output = OutputOption().Match(instruction.Arguments[publish.Index..]);
                            if (!output.Success)
                            {
                                problems.Add($"{path}:{instruction.Line}: dotnet publish {project}: give the output folder (-o) that the runtime stage copies");
                                continue;
                            }

                            var outDir = output.Groups[1].Value.StartsWith('/') ? output.Groups[1].Value : $"{workdir.TrimEnd('/')}/{output.Groups[1].Value}";
                            published.Add((stage, project, outDir.TrimEnd('/')));
                        }

                        foreach (Match backend in TorchBackendProperty().Matches(instruction.Arguments))
                        {
                            var value = backend.Groups[1].Value;
                            foreach (var variable in Dockerfile.Variables(value))
                            {
                                var fallback = file.GlobalArgs.GetValueOrDefault(variable)
                                    ?? stage.All("ARG").Select(Dockerfile.Arg).FirstOrDefault(a => a.Name == variable).Default;
                                if (fallback is null || !facts.TorchBackends.Contains(fallback))
                                {
                                    problems.Add($"{path}:{instruction.Line}: -p:TorchBackend={value}: ARG {variable} needs a default among {string.Join(", ", facts.TorchBackends)} (Directory.Build.targets)");
                                }
                            }

                            if (!value.Contains('$') && !facts.TorchBackends.Contains(value))
                            {
                                problems.Add($"{path}:{instruction.Line}: -p:TorchBackend={value}: Directory.Build.targets knows {string.Join(", ", facts.TorchBackends)}");
                            }
                        }

                        break;
                }
            }
        }

        var entry = EntryAssembly(repo, facts, file, published, problems);
        var finalImage = SplitTag(Expand(file.Final.Image, file.GlobalArgs)).Name;
        foreach (var (_, project, _) in published.Where(p => finalImage == "mcr.microsoft.com/dotnet/runtime" && NeedsAspNetCore(repo, p.Project)))
        {
            problems.Add($"{path}:{file.Final.Line}: FROM {file.Final.Image}: {project} needs the ASP.NET Core shared framework " +
                "(FrameworkReference Microsoft.AspNetCore.App, for the Orleans Dashboard), which only mcr.microsoft.com/dotnet/aspnet has");
        }

        var exposed = file.Final.All("EXPOSE")
            .SelectMany(e => e.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(p => int.TryParse(p.Split('/')[0], out var port) ? port : -1)
            .ToHashSet();
        if (entry == facts.SiloAssembly && !exposed.SetEquals([facts.DefaultSiloPort, facts.DefaultGatewayPort]))
        {
            problems.Add($"{path}: EXPOSE {string.Join(' ', exposed)}: the silo listens on {facts.DefaultSiloPort} (silo) and {facts.DefaultGatewayPort} (gateway) by default (ClusterSiloOptions)");
        }

        return new DockerfileFacts(path, file, entry, exposed);
    }

    /// <summary>
    /// The assembly the final stage runs: `ENTRYPOINT ["dotnet", "/app/X.dll"]`, or a script copied from the
    /// repository that runs `dotnet /app/X.dll`. X must be built by a `dotnet publish` of an earlier stage and
    /// the folder must be where the final stage copies that publish output.
    /// </summary>
    private static string? EntryAssembly(IRepoFiles repo, ProjectFacts facts, Dockerfile file,
        List<(DockerStage Stage, string Project, string Output)> published, List<string> problems)
    {
        var final = file.Final;
        var entrypoint = final.All("ENTRYPOINT").LastOrDefault();
        if (entrypoint is null)
        {
            problems.Add($"{file.Path}: the final stage has no ENTRYPOINT");
            return null;
        }

        var words = entrypoint.CommandWords();
        var workdir = final.All("WORKDIR").Where(w => w.Line < entrypoint.Line).Select(w => w.Arguments).LastOrDefault() ?? "/";
        string? dll = null;
        if (words.Count >= 2 && words[0] == "dotnet")
        {
            dll = words[1];
        }
        else if (words.Count >= 1)
        {
            var script = words[0] is "sh" or "/bin/sh" or "bash" or "/bin/bash" && words.Count >= 2 ? words[1] : words[0];
            var copy = final.All("COPY").Select(c => c.SplitFlags())
                .Where(c => !c.Flags.ContainsKey("from"))
                .Select(c => c.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .FirstOrDefault(w => w.Length == 2 && (w[1] == script || (w[1].EndsWith('/') && w[1] + Path.GetFileName(w[0]) == script)));
            if (copy is null)
            {
                problems.Add($"{file.Path}:{entrypoint.Line}: ENTRYPOINT {script} is neither `dotnet <assembly>.dll` nor a script copied from the repository");
                return null;
            }

            var text = repo.Exists(copy[0]) ? repo.Read(copy[0]) : "";
            var run = ScriptDotnet().Match(text);
            if (!run.Success)
            {
                problems.Add($"{file.Path}:{entrypoint.Line}: the entry script {copy[0]} runs no `dotnet <assembly>.dll`");
                return null;
            }

            dll = run.Groups[1].Value;
        }

        if (dll is null)
        {
            problems.Add($"{file.Path}:{entrypoint.Line}: empty ENTRYPOINT");
            return null;
        }

        dll = dll.StartsWith('/') ? dll : $"{workdir.TrimEnd('/')}/{dll}";
        var name = Path.GetFileName(dll);
        var folder = dll[..dll.LastIndexOf('/')];
        var producer = published.FirstOrDefault(p => facts.Assemblies[p.Project] == name);
        if (producer.Project is null)
        {
            problems.Add($"{file.Path}:{entrypoint.Line}: runs {name}, but this Dockerfile publishes {(published.Count == 0 ? "nothing" : string.Join(", ", published.Select(p => $"{p.Project} ({facts.Assemblies[p.Project]})")))}");
            return null;
        }

        var copied = final.All("COPY").Select(c => c.SplitFlags())
            .Where(c => c.Flags.TryGetValue("from", out var from) && (from == producer.Stage.Name || from == producer.Stage.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .Select(c => c.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(w => w.Length == 2 && w[0].TrimEnd('/') == producer.Output && w[1].TrimEnd('/') == folder);
        if (!copied)
        {
            problems.Add($"{file.Path}:{entrypoint.Line}: runs {dll}, but the final stage does not copy the publish output {producer.Output} of stage '{producer.Stage.Name}' to {folder}");
        }

        return name;
    }

    /// <summary>
    /// What building a project reads from the repository: the project, the projects it references (transitively),
    /// files its items include from elsewhere (../../sweeps/demo.yaml), the root build files (global.json,
    /// Directory.*.props/targets) and what Directory.Build.targets imports ($(MSBuildThisFileDirectory)build/…).
    /// </summary>
    public static IReadOnlyList<string> BuildInputs(IRepoFiles repo, string project)
    {
        var inputs = new List<string>();
        foreach (var root in new[] { "global.json", "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "nuget.config", "NuGet.Config" }.Where(repo.Exists))
        {
            inputs.Add(root);
            inputs.AddRange(ThisFileImport().Matches(repo.Read(root)).Select(m => RepoPath.Normalize(m.Groups[1].Value)));
        }

        var pending = new Queue<string>([project]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (pending.TryDequeue(out var current))
        {
            if (!seen.Add(current) || !repo.Exists(current))
            {
                continue;
            }

            inputs.Add(current);
            foreach (Match include in ItemInclude().Matches(repo.Read(current)))
            {
                var target = RepoPath.Combine(RepoPath.Folder(current), include.Groups[2].Value);
                if (include.Groups[1].Value == "ProjectReference")
                {
                    pending.Enqueue(target);
                }
                else if (include.Groups[2].Value.StartsWith("..", StringComparison.Ordinal))
                {
                    inputs.Add(target);
                }
            }
        }

        return inputs.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Whether a project, or one it references, has the framework reference Microsoft.AspNetCore.App.</summary>
    public static bool NeedsAspNetCore(IRepoFiles repo, string project) =>
        BuildInputs(repo, project).Where(f => f.EndsWith(".csproj", StringComparison.Ordinal) && repo.Exists(f))
            .Any(f => ItemInclude().Matches(repo.Read(f)).Any(m => m.Groups[1].Value == "FrameworkReference" && m.Groups[2].Value == "Microsoft.AspNetCore.App"));

    private static string Expand(string text, IReadOnlyDictionary<string, string?> args) =>
        VariableReference().Replace(text, m => args.GetValueOrDefault(m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value) ?? "");

    /// <summary>
    /// Shell commands of a Markdown text: the lines of fenced code blocks (continuation lines joined) and inline
    /// code spans, split into words and at unquoted ; &amp;&amp; ||.
    /// </summary>
    public static IEnumerable<List<string>> ShellCommands(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n").Split('\n');
        var fenced = false;
        var pieces = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }

            if (fenced)
            {
                while (line.EndsWith('\\') && i + 1 < lines.Length)
                {
                    line = line[..^1] + " " + lines[++i].Trim();
                }

                pieces.Add(line.TrimStart('$', ' '));
            }
            else
            {
                pieces.AddRange(InlineCode().Matches(line).Select(m => m.Groups[1].Value));
            }
        }

        foreach (var piece in pieces)
        {
            var command = new List<string>();
            foreach (var word in ShellWords(piece).Append(";"))
            {
                if (word is ";" or "&&" or "||")
                {
                    if (command.Count > 0)
                    {
                        yield return command;
                    }

                    command = [];
                }
                else
                {
                    command.Add(word);
                }
            }
        }
    }

    /// <summary>Splits a command line into words (single and double quotes; no expansion); an unquoted ; is a word of its own.</summary>
    public static List<string> ShellWords(string line)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        var inWord = false;
        char quote = '\0';
        foreach (var c in line)
        {
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (c == '#' && !inWord)
            {
                break;
            }
            else if (char.IsWhiteSpace(c) || c == ';')
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }

                if (c == ';')
                {
                    words.Add(";");
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"^[a-z0-9]+(?:[._-][a-z0-9]+)*$|^(?:docker\.io/)?library/[a-z0-9]+(?:[._-][a-z0-9]+)*$")]
    private static partial Regex OfficialLibraryName();

    [GeneratedRegex(@"<(\w+)\s+Include=""([^""$*]+)""")]
    private static partial Regex ItemInclude();

    [GeneratedRegex(@"\$\(MSBuildThisFileDirectory\)([\w./-]+)")]
    private static partial Regex ThisFileImport();

    [GeneratedRegex(@"dotnet\s+publish\s+(\S+)")]
    private static partial Regex DotnetPublish();

    [GeneratedRegex(@"(?:\s-o|\s--output)\s+(\S+)")]
    private static partial Regex OutputOption();

    [GeneratedRegex(@"-p:TorchBackend=(\S+)")]
    private static partial Regex TorchBackendProperty();

    [GeneratedRegex(@"\bexec\s+dotnet\s+""?([^\s""]+\.dll)")]
    private static partial Regex ScriptDotnet();

    [GeneratedRegex(@"\$\{(\w+)\}|\$(\w+)")]
    private static partial Regex VariableReference();
}

/// <summary>A .dockerignore (the one next to the Dockerfile, &lt;Dockerfile&gt;.dockerignore, else the context root's).</summary>
public sealed class DockerIgnore
{
    private readonly List<(Regex Pattern, bool Exclude)> _rules = [];

    public string Source { get; private init; } = "(none)";

    public static DockerIgnore Load(IRepoFiles repo, string dockerfile)
    {
        var source = repo.Exists(dockerfile + ".dockerignore") ? dockerfile + ".dockerignore" : ".dockerignore";
        var ignore = new DockerIgnore { Source = source };
        if (!repo.Exists(source))
        {
            return ignore;
        }

        foreach (var raw in repo.Read(source).Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var exclude = !line.StartsWith('!');
            var pattern = RepoPath.Normalize(line.TrimStart('!').Trim('/'));
            var regex = "^" + Regex.Escape(pattern).Replace(@"\*\*/", "(?:.*/)?").Replace(@"\*\*", ".*").Replace(@"\*", "[^/]*").Replace(@"\?", "[^/]") + "$";
            ignore._rules.Add((new Regex(regex), exclude));
        }

        return ignore;
    }

    /// <summary>Whether the path, or a folder above it, is left out of the build context.</summary>
    public bool Excludes(string path)
    {
        var parts = path.Split('/');
        for (var n = 1; n <= parts.Length; n++)
        {
            var prefix = string.Join('/', parts.Take(n));
            bool? excluded = null;
            foreach (var (pattern, exclude) in _rules)
            {
                if (pattern.IsMatch(prefix))
                {
                    excluded = exclude;
                }
            }

            if (excluded == true)
            {
                return true;
            }
        }

        return false;
    }
}
