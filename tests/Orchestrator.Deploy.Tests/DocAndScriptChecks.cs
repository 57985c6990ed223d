using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Orchestrator.Deploy.Tests;

/// <summary>
/// Checks of the READMEs under deploy/ (the paths, images, services, Kubernetes objects and program arguments
/// their commands name) and of the shell scripts (syntax; what cluster.sh passes to the silo and the CLI).
/// </summary>
public static partial class DocAndScriptChecks
{
    public const string LocalCluster = "deploy/local/cluster.sh";

    /// <summary>READMEs that describe files nobody can run here: they must say so.</summary>
    public static readonly string[] UnrunReadmes = ["deploy/README.md", "deploy/docker/README.md", "deploy/k8s/README.md"];

    public static List<string> CheckReadmes(Deployment d)
    {
        var problems = new List<string>();
        foreach (var readme in UnrunReadmes.Where(r => !d.Repo.Exists(r)))
        {
            problems.Add($"{readme}: missing");
        }

        foreach (var readme in UnrunReadmes.Where(d.Repo.Exists))
        {
            if (!d.Repo.Read(readme).Contains("checked by tests, not run here", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"{readme}: must say that its files are checked by tests, not run here");
            }
        }

        var k8s = KubernetesChecks.LoadObjects(d.Repo, []);
        foreach (var readme in d.Repo.Files("deploy", "README.md"))
        {
            var text = d.Repo.Read(readme);
            foreach (Match m in DeployPath().Matches(text))
            {
                var path = m.Groups[1].Value.TrimEnd('.', '/');
                if (!d.Repo.Exists(path) && !d.Repo.Exists(path + ".example"))
                {
                    problems.Add($"{readme}: names {path}, which does not exist");
                }
            }

            foreach (var command in Images.ShellCommands(text))
            {
                CheckCommand(d, readme, command, k8s, problems);
            }
        }

        return problems;
    }

    private static void CheckCommand(Deployment d, string readme, List<string> words, List<K8sObject> k8s, List<string> problems)
    {
        var where = $"{readme}: `{string.Join(' ', words)}`";
        var cut = words.FindIndex(w => w is "|" or ">" or "2>&1");
        if (cut >= 0)
        {
            words = words[..cut];
        }

        if (words is ["docker", "build", ..])
        {
            var file = Option(words, "-f") ?? Option(words, "--file");
            var tag = Option(words, "-t") ?? Option(words, "--tag");
            var image = tag is null ? null : d.FindImage(tag);
            if (image is null || image.Dockerfile != file)
            {
                problems.Add($"{where}: not one of the image builds of {Images.DockerReadme}");
            }
        }
        else if (words is ["docker", "compose", ..])
        {
            var file = Option(words, "-f") ?? Option(words, "--file");
            if (file is null || !d.Repo.Exists(file))
            {
                problems.Add($"{where}: give the compose file with -f (from the repository root); {file ?? "none"} does not exist");
                return;
            }

            var services = Yaml.LoadMapping(d.Repo.Read(file)).Map("services") ?? [];
            for (var i = 1; i < words.Count; i++)
            {
                if (words[i - 1] != "--scale")
                {
                    continue;
                }

                var service = words[i].Split('=')[0];
                if (!services.TryGetValue(service, out var definition)
                    || definition.Str("image") is not { } image
                    || d.FindImage(image) is not { } project
                    || d.AssemblyOf(project) != d.Facts.SiloAssembly)
                {
                    problems.Add($"{where}: --scale {service}: not a silo service of {file}");
                }
            }

            var run = words.IndexOf("run");
            if (run > 0)
            {
                var rest = words.Skip(run + 1).SkipWhile(w => w.StartsWith('-')).ToList();
                if (rest.Count == 0 || !services.TryGetValue(rest[0], out var service))
                {
                    problems.Add($"{where}: no service {(rest.Count == 0 ? "" : rest[0])} in {file}");
                }
                else if (service.Str("image") is { } image && d.FindImage(image) is { } project)
                {
                    d.CheckInvocation(where, project, null, rest.Skip(1).ToList(), problems, new Dictionary<string, string?>());
                }
            }
        }
        else if (words is ["docker", "run", ..])
        {
            // docker run [options] IMAGE [args]: options with a value take the next word.
            var i = 2;
            while (i < words.Count && words[i].StartsWith('-'))
            {
                i += words[i] is "-e" or "--env" or "--gpus" or "-v" or "--volume" or "--name" or "-p" or "--publish" or "--network" or "-w" or "--entrypoint" && !words[i].Contains('=') ? 2 : 1;
            }

            if (i < words.Count)
            {
                if (d.ImageProblem(words[i], out var image) is { } imageProblem)
                {
                    problems.Add($"{where}: {imageProblem}");
                }
                else if (image is not null)
                {
                    var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
                    for (var e = 2; e < i; e++)
                    {
                        if (words[e] is "-e" or "--env" && e + 1 < i)
                        {
                            var kv = words[e + 1].Split('=', 2);
                            d.CheckEnvironment(where, d.AssemblyOf(image), kv[0], kv.Length == 2 ? kv[1] : null, problems, settings);
                        }
                    }

                    d.CheckInvocation(where, image, null, words.Skip(i + 1).ToList(), problems, settings);
                }
            }
        }
        else if (words is ["kubectl", ..])
        {
            var kustomize = Option(words, "-k");
            if (kustomize is not null && !d.Repo.Exists(RepoPath.Combine(kustomize, "kustomization.yaml")))
            {
                problems.Add($"{where}: {kustomize} has no kustomization.yaml");
            }

            var file = words.Contains("apply") ? Option(words, "-f") : null;
            if (file is not null && !d.Repo.Exists(file))
            {
                problems.Add($"{where}: {file} does not exist");
            }

            for (var i = 1; i < words.Count; i++)
            {
                var parts = words[i].Split('/');
                if (words[i - 1] is "-f" or "-k" || parts.Length != 2 || parts[0] is not ("deployment" or "statefulset" or "job" or "service" or "svc"))
                {
                    continue;
                }

                var (kind, name) = (parts[0], parts[1]);
                var wanted = kind switch { "deployment" => "Deployment", "statefulset" => "StatefulSet", "job" => "Job", _ => "Service" };
                if (!k8s.Any(o => o.Kind == wanted && o.Name == name))
                {
                    problems.Add($"{where}: no {wanted} {name} in {KubernetesChecks.Folder}");
                }
            }

            foreach (var pod in words.SkipWhile(w => w != "exec").Skip(1).Where(w => !w.StartsWith('-')).Take(1))
            {
                if (!k8s.Any(o => o.Kind == "Pod" && o.Name == pod))
                {
                    problems.Add($"{where}: no Pod {pod} in {KubernetesChecks.Folder}");
                }
            }
        }

        // `dotnet /app/X.dll …` inside an image: X must be a project output, the rest valid arguments for it.
        var dotnet = words.FindIndex(w => w == "dotnet");
        if (dotnet >= 0 && dotnet + 1 < words.Count && words[dotnet + 1].StartsWith("/app/", StringComparison.Ordinal))
        {
            var dll = Path.GetFileName(words[dotnet + 1]);
            var image = d.Images.FirstOrDefault(i => d.AssemblyOf(i) == dll);
            if (image is null)
            {
                problems.Add($"{where}: {dll} is not what any image runs ({string.Join(", ", d.Images.Select(d.AssemblyOf).Distinct())})");
            }
            else
            {
                d.CheckInvocation(where, image, words.Skip(dotnet).Take(2).ToList(), words.Skip(dotnet + 2).ToList(), problems, new Dictionary<string, string?>());
            }
        }
    }

    private static string? Option(List<string> words, string name)
    {
        var i = words.IndexOf(name);
        return i >= 0 && i + 1 < words.Count ? words[i + 1] : null;
    }

    /// <summary>`bash -n` / `sh -n` (by the shebang) on every shell script under deploy/.</summary>
    public static List<string> CheckScriptSyntax(IRepoFiles repo)
    {
        var problems = new List<string>();
        foreach (var script in repo.Files("deploy", "*.sh"))
        {
            problems.AddRange(SyntaxProblems(script, repo.Read(script)));
        }

        return problems;
    }

    public static IEnumerable<string> SyntaxProblems(string name, string text)
    {
        var shell = text.StartsWith("#!", StringComparison.Ordinal) && text.Split('\n')[0].Contains("bash", StringComparison.Ordinal) ? "bash" : "sh";
        var temp = Path.Combine(Path.GetTempPath(), $"deploy-check-{Guid.NewGuid():N}.sh");
        File.WriteAllText(temp, text);
        try
        {
            var info = new ProcessStartInfo(shell) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            info.ArgumentList.Add("-n");
            info.ArgumentList.Add(temp);
            using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {shell}");
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? [] : [$"{name}: {shell} -n failed: {error.Replace(temp, name, StringComparison.Ordinal).Trim()}"];
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>What deploy/local/cluster.sh runs: the assemblies it starts and the arguments it gives them.</summary>
    public static List<string> CheckLocalCluster(Deployment d)
    {
        var problems = new List<string>();
        if (!d.Repo.Exists(LocalCluster))
        {
            return [$"{LocalCluster}: missing"];
        }

        var text = d.Repo.Read(LocalCluster);
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in DllVariable().Matches(text))
        {
            var (variable, path) = (m.Groups[1].Value, m.Groups[2].Value);
            var project = d.Facts.Assemblies.FirstOrDefault(a => path.StartsWith(RepoPath.Folder(a.Key) + "/", StringComparison.Ordinal));
            if (project.Key is null)
            {
                problems.Add($"{LocalCluster}: {variable}={path} is not under a project folder of src/");
                continue;
            }

            if (Path.GetFileName(path) != project.Value)
            {
                problems.Add($"{LocalCluster}: {variable}={path}: {project.Key} builds {project.Value}");
                continue;
            }

            variables[variable] = project.Value;
        }

        foreach (var line in text.Split('\n'))
        {
            var words = Images.ShellWords(line);
            var dotnet = words.IndexOf("dotnet");
            if (dotnet < 0 || dotnet + 1 >= words.Count || !words[dotnet + 1].StartsWith('$'))
            {
                continue;
            }

            var variable = words[dotnet + 1].Trim('$', '{', '}');
            if (!variables.TryGetValue(variable, out var dll))
            {
                continue;
            }

            var args = words.Skip(dotnet + 2)
                .TakeWhile(w => !w.Contains('>', StringComparison.Ordinal) && w is not "&" and not "|" and not "||" and not "&&" and not ";")
                .Where(w => w is not "$@" and not "\\")
                .ToList();
            var where = $"{LocalCluster}: `{line.Trim()}`";
            if (dll == d.Facts.SiloAssembly)
            {
                d.CheckSiloArguments(where, args, problems, new Dictionary<string, string?>());
            }
            else if (dll == d.Facts.CliAssembly)
            {
                d.CheckCliArguments(where, args, problems);
            }
        }

        if (variables.Count == 0)
        {
            problems.Add($"{LocalCluster}: runs no project assembly (SILO_DLL=…/Orchestrator.Silo.dll)");
        }

        return problems;
    }

    [GeneratedRegex(@"(?<![\w/.-])(deploy/[\w./-]*[\w-])")]
    private static partial Regex DeployPath();

    [GeneratedRegex(@"^(\w+)=\$ROOT/([\w./$-]+\.dll)", RegexOptions.Multiline)]
    private static partial Regex DllVariable();
}
