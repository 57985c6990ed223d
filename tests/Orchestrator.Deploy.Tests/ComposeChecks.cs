using System.Text.RegularExpressions;
using YamlDotNet.Core;

namespace Orchestrator.Deploy.Tests;

/// <summary>Checks of deploy/compose/*.yaml against the project and deploy/docker.</summary>
public static partial class ComposeChecks
{
    public const string Folder = "deploy/compose";

    private static readonly HashSet<string> Conditions = new(StringComparer.Ordinal) { "service_started", "service_healthy", "service_completed_successfully" };

    public static List<string> CheckAll(Deployment deployment)
    {
        var problems = new List<string>();
        var files = deployment.Repo.Files(Folder, "*.yaml").Concat(deployment.Repo.Files(Folder, "*.yml")).ToList();
        if (files.Count == 0)
        {
            problems.Add($"{Folder}: no compose file");
        }

        foreach (var file in files)
        {
            problems.AddRange(Check(deployment, file));
        }

        return problems;
    }

    public static List<string> Check(Deployment d, string file)
    {
        var problems = new List<string>();
        var text = d.Repo.Read(file);
        Dictionary<string, object?> root;
        try
        {
            root = Yaml.LoadMapping(text);
        }
        catch (Exception ex) when (ex is YamlException or FormatException or InvalidCastException)
        {
            return [$"{file}: not valid YAML: {ex.Message}"];
        }

        var folder = RepoPath.Folder(file);
        var services = root.Map("services");
        if (services is null || services.Count == 0)
        {
            return [$"{file}: no services"];
        }

        // Required variables (${X:?…}) must be documented in .env.example; no secret may be written literally.
        var example = RepoPath.Combine(folder, ".env.example");
        var documented = d.Repo.Exists(example)
            ? EnvLine().Matches(d.Repo.Read(example)).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal)
            : [];
        foreach (var variable in RequiredVariable().Matches(text).Select(m => m.Groups[1].Value).Distinct())
        {
            if (!documented.Contains(variable))
            {
                problems.Add($"{file}: ${{{variable}}} is required but not listed in {example}");
            }
        }

        var kinds = new Dictionary<string, (ProjectImage? Image, string? Assembly, string? Official)>(StringComparer.Ordinal);
        foreach (var (name, value) in services)
        {
            var image = value.Str("image");
            var project = image is null ? null : d.FindImage(image);
            kinds[name] = (project, project is null ? null : d.AssemblyOf(project), project is null ? image : null);
        }

        var migrators = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, (_, assembly, _)) in kinds)
        {
            if (assembly == d.Facts.CliAssembly && Words(services[name].At("command")) is ["db", "migrate", ..])
            {
                migrators.Add(name);
            }
        }

        foreach (var (name, entry) in services)
        {
            var where = $"{file}: services.{name}";
            var value = entry as Dictionary<string, object?> ?? [];
            var (project, assembly, _) = kinds[name];
            var image = value.Str("image");
            if (image is null && value.At("build") is null)
            {
                problems.Add($"{where}: neither image nor build");
            }
            else if (image is not null && d.ImageProblem(image, out _) is { } imageProblem)
            {
                problems.Add($"{where}: {imageProblem}");
            }

            CheckBuild(d, where, folder, value.At("build"), project, problems);

            var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            var environment = Environment(value.At("environment"));
            foreach (var (variable, raw) in environment)
            {
                var resolved = raw is null ? null : Interpolate(raw);
                d.CheckEnvironment($"{where}.environment", assembly, variable, resolved ?? raw, problems, settings);
                CheckSecretLiteral($"{where}.environment.{variable}", variable, raw, problems);
                if (raw is not null && raw.Contains("Host=", StringComparison.OrdinalIgnoreCase))
                {
                    var (host, port) = Deployment.ConnectionTarget(raw);
                    if (host is null || !services.TryGetValue(host, out var target) || target.Str("image") is not { } targetImage
                        || Images.SplitTag(targetImage).Name != "postgres")
                    {
                        problems.Add($"{where}.environment.{variable}: Host={host} is not a postgres service of this file");
                    }
                    else if (port != 5432)
                    {
                        problems.Add($"{where}.environment.{variable}: Port={port}, but the postgres service listens on 5432");
                    }
                }
            }

            // A CLI service in a profile is started by `docker compose run <service> <arguments>`: no command of its own.
            var runOnly = assembly == d.Facts.CliAssembly && value.At("command") is null && value.List("profiles").Count > 0;
            if (project is not null && !runOnly)
            {
                d.CheckInvocation($"{where}.command", project, Words(value.At("entrypoint")), Words(value.At("command")) ?? [], problems, settings);
            }

            var dependsOn = DependsOn(value.At("depends_on"));
            foreach (var (target, condition) in dependsOn)
            {
                if (!services.TryGetValue(target, out var targetService))
                {
                    problems.Add($"{where}.depends_on: no service {target}");
                }
                else if (!Conditions.Contains(condition))
                {
                    problems.Add($"{where}.depends_on.{target}: condition {condition} is not one of {string.Join(", ", Conditions)}");
                }
                else if (condition == "service_healthy" && targetService.At("healthcheck") is null)
                {
                    problems.Add($"{where}.depends_on.{target}: service_healthy, but {target} has no healthcheck");
                }
                else if (condition == "service_completed_successfully" && targetService.Str("restart") is { } restart && restart != "no")
                {
                    problems.Add($"{where}.depends_on.{target}: service_completed_successfully, but {target} restarts ({restart}): it must be one-shot");
                }
            }

            if (migrators.Contains(name) && !dependsOn.Any(p => p.Condition == "service_healthy"
                    && services.TryGetValue(p.Service, out var db) && db.Str("image") is { } dbImage && Images.SplitTag(dbImage).Name == "postgres"))
            {
                problems.Add($"{where}: the migration must wait for the database (depends_on: <postgres>: condition: service_healthy)");
            }

            if (assembly == d.Facts.SiloAssembly)
            {
                CheckSilo(d, where, name, value, settings, dependsOn, migrators, problems);
            }

            foreach (var volume in value.List("volumes"))
            {
                var source = volume switch
                {
                    string s when s.Split(':') is [var src, _, ..] && (src.StartsWith('.') || src.StartsWith('/')) => src,
                    Dictionary<string, object?> m when m.Str("type") == "bind" => m.Str("source"),
                    _ => null,
                };
                if (source is not null && !source.StartsWith('/') && !d.Repo.Exists(RepoPath.Combine(folder, source)))
                {
                    problems.Add($"{where}.volumes: {source} does not exist (relative to {folder})");
                }
            }
        }

        return problems;
    }

    private static void CheckSilo(Deployment d, string where, string name, Dictionary<string, object?> service, Dictionary<string, string?> settings,
        List<(string Service, string Condition)> dependsOn, HashSet<string> migrators, List<string> problems)
    {
        if (!dependsOn.Any(p => migrators.Contains(p.Service) && p.Condition == "service_completed_successfully"))
        {
            problems.Add($"{where}: a silo must start after the schema migration (depends_on: <migrate>: condition: service_completed_successfully); it refuses a database without the schema");
        }

        if (Deployment.Setting(settings, "ConnectionStrings:Orchestrator") is null)
        {
            problems.Add($"{where}: no connection string (ORCHESTRATOR_ConnectionStrings__Orchestrator or --cluster): the silo would run embedded");
        }

        if (Deployment.Setting(settings, "Role") is null)
        {
            problems.Add($"{where}: no role (--role or ORCHESTRATOR_Role): the silo would run as 'all'");
        }

        var advertised = Deployment.Setting(settings, "AdvertiseAddress");
        if (advertised is "127.0.0.1" or "::1")
        {
            problems.Add($"{where}: advertises loopback; other containers cannot reach it");
        }
        else if (advertised is null && service.At("entrypoint") is not null)
        {
            problems.Add($"{where}: overrides the entry point, which sets the advertised address (deploy/docker/silo-entrypoint.sh): set ORCHESTRATOR_AdvertiseAddress");
        }

        // Scalable: `--scale <service>=N` needs no fixed name and no host port.
        if (service.At("container_name") is not null)
        {
            problems.Add($"{where}: container_name prevents `docker compose up --scale {name}=N`");
        }

        if (service.List("ports").Count > 0)
        {
            problems.Add($"{where}: publishes host ports: several replicas would collide, and Orleans reaches silos at their container IP");
        }

        var (silo, gateway) = d.SiloPorts(settings);
        var health = Words(service.At("healthcheck", "test")) ?? [];
        foreach (Match m in TcpProbe().Matches(string.Join(' ', health)))
        {
            var port = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (port != silo && port != gateway)
            {
                problems.Add($"{where}.healthcheck: probes port {port}, but the silo listens on {silo} and {gateway}");
            }
        }

        foreach (var expose in service.List("expose").OfType<string>())
        {
            if (!int.TryParse(expose.Split('/')[0], out var port) || (port != silo && port != gateway))
            {
                problems.Add($"{where}.expose: {expose} is neither the silo port {silo} nor the gateway port {gateway}");
            }
        }
    }

    private static void CheckBuild(Deployment d, string where, string folder, object? build, ProjectImage? project, List<string> problems)
    {
        if (build is null)
        {
            return;
        }

        var context = build as string ?? build.Str("context") ?? ".";
        var contextPath = RepoPath.Combine(folder, context);
        if (contextPath.Length != 0)
        {
            problems.Add($"{where}.build.context: {context} is {contextPath}, not the repository root that the Dockerfiles expect");
        }

        var dockerfile = RepoPath.Combine(contextPath, build.Str("dockerfile") ?? "Dockerfile");
        if (!d.Repo.Exists(dockerfile))
        {
            problems.Add($"{where}.build.dockerfile: {dockerfile} does not exist");
            return;
        }

        if (project is null)
        {
            problems.Add($"{where}.build: the image it builds is not named after a deploy/docker/README.md image");
            return;
        }

        if (project.Dockerfile != dockerfile)
        {
            problems.Add($"{where}.build: builds {project.Name} from {dockerfile}, but deploy/docker/README.md builds it from {project.Dockerfile}");
        }

        var args = build.Map("args")?.ToDictionary(a => a.Key, a => a.Value as string ?? "", StringComparer.Ordinal) ?? [];
        if (d.Dockerfiles.TryGetValue(dockerfile, out var facts))
        {
            var declared = facts.File.GlobalArgs.Keys.Concat(facts.File.Stages.SelectMany(s => s.All("ARG")).Select(a => Dockerfile.Arg(a).Name)).ToHashSet(StringComparer.Ordinal);
            foreach (var arg in args.Keys.Where(a => !declared.Contains(a)))
            {
                problems.Add($"{where}.build.args: {arg} is not an ARG of {dockerfile}");
            }

            var mine = facts.EffectiveArgs(args);
            var documented = facts.EffectiveArgs(project.BuildArgs);
            foreach (var key in mine.Keys.Union(documented.Keys).Where(k => mine.GetValueOrDefault(k) != documented.GetValueOrDefault(k)))
            {
                problems.Add($"{where}.build.args: {key}={mine.GetValueOrDefault(key)}, but deploy/docker/README.md builds {project.Name} with {key}={documented.GetValueOrDefault(key)}");
            }
        }
    }

    private static void CheckSecretLiteral(string where, string variable, string? value, List<string> problems)
    {
        if (value is null)
        {
            return;
        }

        if (variable.Contains("PASSWORD", StringComparison.OrdinalIgnoreCase) && !value.StartsWith("${", StringComparison.Ordinal))
        {
            problems.Add($"{where}: a password written in the file; take it from the environment (${{{variable}:?…}})");
        }

        foreach (Match m in PasswordPart().Matches(value))
        {
            if (!m.Groups[1].Value.StartsWith("${", StringComparison.Ordinal))
            {
                problems.Add($"{where}: the connection string has a literal password; use ${{…}} from the environment");
            }
        }
    }

    /// <summary>Compose interpolation: ${X:-default} and ${X-default} give the default; ${X}, ${X:?…} are unknown (null).</summary>
    public static string? Interpolate(string value)
    {
        var unknown = false;
        var result = Interpolation().Replace(value, m =>
        {
            if (m.Groups["op"].Value is ":-" or "-")
            {
                return m.Groups["rest"].Value;
            }

            unknown = true;
            return "";
        });
        return unknown ? null : result;
    }

    public static List<string>? Words(object? value) => value switch
    {
        null => null,
        string s => Images.ShellWords(s),
        List<object?> l => l.Select(x => x as string ?? "").ToList(),
        _ => null,
    };

    public static List<(string Name, string? Value)> Environment(object? value) => value switch
    {
        Dictionary<string, object?> m => m.Select(e => (e.Key, e.Value as string)).ToList(),
        List<object?> l => l.OfType<string>().Select(e => e.Split('=', 2)).Select(kv => (kv[0], kv.Length == 2 ? kv[1] : null)).ToList(),
        _ => [],
    };

    public static List<(string Service, string Condition)> DependsOn(object? value) => value switch
    {
        Dictionary<string, object?> m => m.Select(e => (e.Key, e.Value.Str("condition") ?? "service_started")).ToList(),
        List<object?> l => l.OfType<string>().Select(s => (s, "service_started")).ToList(),
        _ => [],
    };

    [GeneratedRegex(@"\$\{(\w+):?\?")]
    private static partial Regex RequiredVariable();

    [GeneratedRegex(@"^\s*#?\s*(\w+)=", RegexOptions.Multiline)]
    private static partial Regex EnvLine();

    [GeneratedRegex(@"\$\{(?<name>\w+)(?:(?<op>:-|-|:\?|\?)(?<rest>[^}]*))?\}")]
    private static partial Regex Interpolation();

    [GeneratedRegex(@"Password=([^;]*)", RegexOptions.IgnoreCase)]
    private static partial Regex PasswordPart();

    [GeneratedRegex(@"/dev/tcp/[^/\s]+/(\d+)")]
    private static partial Regex TcpProbe();
}
