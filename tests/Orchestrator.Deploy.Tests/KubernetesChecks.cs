using System.Globalization;
using YamlDotNet.Core;

namespace Orchestrator.Deploy.Tests;

/// <summary>A Kubernetes object of deploy/k8s and the file it is in.</summary>
public sealed record K8sObject(string File, Dictionary<string, object?> Doc)
{
    public string Kind => Doc.Str("kind") ?? "";

    public string Name => Doc.At("metadata", "name") as string ?? "";

    public override string ToString() => $"{File}: {Kind}/{Name}";
}

/// <summary>Checks of the Kubernetes manifests (every YAML document under deploy/k8s) and their kustomization.</summary>
public static class KubernetesChecks
{
    public const string Folder = "deploy/k8s";
    public const string Kustomization = "deploy/k8s/kustomization.yaml";

    private static readonly HashSet<string> Workloads = new(StringComparer.Ordinal) { "Deployment", "StatefulSet", "DaemonSet", "Job", "Pod" };

    public static List<string> CheckAll(Deployment d)
    {
        var problems = new List<string>();
        var objects = LoadObjects(d.Repo, problems);
        if (!d.Repo.Exists(Kustomization))
        {
            problems.Add($"{Kustomization}: missing");
            return problems;
        }

        var kustomization = Yaml.LoadMapping(d.Repo.Read(Kustomization));
        var resources = kustomization.List("resources").OfType<string>().Select(r => RepoPath.Combine(Folder, r)).ToHashSet(StringComparer.Ordinal);
        CheckKustomization(d, kustomization, resources, objects, problems);
        return problems;
    }

    /// <summary>Every document of every YAML file under deploy/k8s (multi-document files included), but the kustomization.</summary>
    public static List<K8sObject> LoadObjects(IRepoFiles repo, List<string> problems)
    {
        var objects = new List<K8sObject>();
        foreach (var file in repo.Files(Folder, "*.yaml").Concat(repo.Files(Folder, "*.yml")).Where(f => f != Kustomization))
        {
            try
            {
                foreach (var doc in Yaml.LoadAll(repo.Read(file)))
                {
                    if (doc is not Dictionary<string, object?> map || map.Str("apiVersion") is null || map.Str("kind") is null || map.At("metadata", "name") is not string)
                    {
                        problems.Add($"{file}: a document without apiVersion, kind and metadata.name");
                        continue;
                    }

                    objects.Add(new K8sObject(file, map));
                }
            }
            catch (Exception ex) when (ex is YamlException or FormatException or InvalidCastException)
            {
                problems.Add($"{file}: not valid YAML: {ex.Message}");
            }
        }

        return objects;
    }

    private static void CheckKustomization(Deployment d, Dictionary<string, object?> kustomization, HashSet<string> resources,
        List<K8sObject> objects, List<string> problems)
    {
        foreach (var resource in resources.Where(r => !d.Repo.Exists(r)))
        {
            problems.Add($"{Kustomization}: resource {resource} does not exist");
        }

        // Namespace: the kustomization puts everything in one; files applied on their own must say it themselves.
        var ns = kustomization.Str("namespace");
        if (ns is not null && !objects.Any(o => o.Kind == "Namespace" && o.Name == ns && resources.Contains(o.File)))
        {
            problems.Add($"{Kustomization}: namespace {ns}, but no Namespace {ns} among the resources");
        }

        foreach (var o in objects.Where(o => !resources.Contains(o.File) && o.Kind != "Namespace"))
        {
            if (o.Doc.At("metadata", "namespace") as string != ns)
            {
                problems.Add($"{o}: not in kustomization.yaml, so it must set metadata.namespace: {ns}");
            }
        }

        // Secrets and ConfigMaps: generated ones (keys from their sources) and declared ones.
        var secrets = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var configMaps = new Dictionary<string, Dictionary<string, string?>>(StringComparer.Ordinal);
        var secretValues = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var generator in kustomization.Maps("secretGenerator"))
        {
            var keys = new HashSet<string>(StringComparer.Ordinal);
            foreach (var env in generator.List("envs").OfType<string>())
            {
                var path = RepoPath.Combine(Folder, env);
                var example = path + ".example";
                if (!d.Repo.Exists(example))
                {
                    problems.Add($"{Kustomization}: secretGenerator {generator.Str("name")}: {env} is not committed (it holds secrets); {example} must show its keys");
                    continue;
                }

                foreach (var line in d.Repo.Read(example).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
                {
                    var kv = line.Split('=', 2);
                    keys.Add(kv[0]);
                    secretValues[kv[0]] = kv.Length == 2 ? kv[1] : "";
                }

                if (d.Repo.Exists(RepoPath.Combine(Folder, ".gitignore"))
                    && !d.Repo.Read(RepoPath.Combine(Folder, ".gitignore")).Split('\n').Select(l => l.Trim()).Contains(env))
                {
                    problems.Add($"{Folder}/.gitignore: must ignore {env} (the secrets)");
                }
            }

            foreach (var literal in generator.List("literals").OfType<string>())
            {
                problems.Add($"{Kustomization}: secretGenerator literal '{literal.Split('=')[0]}' writes a secret into the repository");
            }

            secrets[generator.Str("name") ?? ""] = keys;
        }

        foreach (var generator in kustomization.Maps("configMapGenerator"))
        {
            var keys = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var source in generator.List("files").OfType<string>())
            {
                var parts = source.Split('=', 2);
                var path = RepoPath.Combine(Folder, parts[^1]);
                if (!d.Repo.Exists(path))
                {
                    problems.Add($"{Kustomization}: configMapGenerator {generator.Str("name")}: {path} does not exist");
                }

                keys[parts.Length == 2 ? parts[0] : Path.GetFileName(parts[0])] = null;
            }

            configMaps[generator.Str("name") ?? ""] = keys;
        }

        foreach (var o in objects)
        {
            if (o.Kind == "ConfigMap")
            {
                configMaps[o.Name] = o.Doc.Map("data")?.ToDictionary(e => e.Key, e => e.Value as string, StringComparer.Ordinal) ?? [];
            }
            else if (o.Kind == "Secret")
            {
                secrets[o.Name] = (o.Doc.Map("stringData")?.Keys ?? Enumerable.Empty<string>()).Concat(o.Doc.Map("data")?.Keys ?? Enumerable.Empty<string>()).ToHashSet(StringComparer.Ordinal);
                problems.Add($"{o}: a Secret in the repository; generate it from the ignored secrets.env instead");
            }
        }

        foreach (var image in kustomization.Maps("images"))
        {
            if (image.Str("name") is { } name && d.FindImage(name) is null)
            {
                problems.Add($"{Kustomization}: images: {name} is not an image deploy/docker builds");
            }
        }

        var context = new Context(d, objects, secrets, configMaps, secretValues, problems);
        foreach (var o in objects.Where(o => Workloads.Contains(o.Kind)))
        {
            context.CheckWorkload(o);
        }

        foreach (var o in objects.Where(o => o.Kind == "Service"))
        {
            context.CheckService(o);
        }
    }

    private sealed class Context(
        Deployment d,
        List<K8sObject> objects,
        Dictionary<string, HashSet<string>> secrets,
        Dictionary<string, Dictionary<string, string?>> configMaps,
        Dictionary<string, string> secretValues,
        List<string> problems)
    {
        public static Dictionary<string, object?>? PodSpec(K8sObject o) =>
            o.Kind == "Pod" ? o.Doc.Map("spec") : o.Doc.At("spec", "template", "spec") as Dictionary<string, object?>;

        public static Dictionary<string, object?> PodLabels(K8sObject o) =>
            (o.Kind == "Pod" ? o.Doc.At("metadata", "labels") : o.Doc.At("spec", "template", "metadata", "labels")) as Dictionary<string, object?> ?? [];

        public void CheckWorkload(K8sObject o)
        {
            var spec = PodSpec(o);
            if (spec is null)
            {
                problems.Add($"{o}: no pod spec");
                return;
            }

            if (o.Kind is "Deployment" or "StatefulSet" or "DaemonSet")
            {
                var selector = o.Doc.At("spec", "selector", "matchLabels") as Dictionary<string, object?> ?? [];
                var labels = PodLabels(o);
                if (selector.Count == 0 || selector.Any(s => labels.GetValueOrDefault(s.Key) as string != s.Value as string))
                {
                    problems.Add($"{o}: spec.selector.matchLabels does not match the pod template's labels");
                }
            }

            if (o.Kind == "StatefulSet" && o.Doc.At("spec", "serviceName") is string serviceName && !objects.Any(s => s.Kind == "Service" && s.Name == serviceName))
            {
                problems.Add($"{o}: serviceName {serviceName} is not a Service of {Folder}");
            }

            foreach (var volume in spec.Maps("volumes"))
            {
                if (volume.At("configMap", "name") is string cm && !configMaps.ContainsKey(cm))
                {
                    problems.Add($"{o}: volume {volume.Str("name")}: no ConfigMap {cm}");
                }

                if (volume.At("secret", "secretName") is string secret && !secrets.ContainsKey(secret))
                {
                    problems.Add($"{o}: volume {volume.Str("name")}: no Secret {secret}");
                }
            }

            foreach (var container in spec.Maps("containers").Concat(spec.Maps("initContainers")))
            {
                CheckContainer(o, container);
            }
        }

        private void CheckContainer(K8sObject o, Dictionary<string, object?> container)
        {
            var where = $"{o} container {container.Str("name")}";
            var imageProblem = d.ImageProblem(container.Str("image"), out var project);
            if (imageProblem is not null)
            {
                problems.Add($"{where}: {imageProblem}");
            }

            var assembly = project is null ? null : d.AssemblyOf(project);
            if (container.At("resources", "requests", "cpu") is null || container.At("resources", "requests", "memory") is null)
            {
                problems.Add($"{where}: give resources.requests (cpu and memory) so the scheduler can place it");
            }

            // Environment: literal values, references to Secrets / ConfigMaps / pod fields, and envFrom.
            var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            var fieldRefs = new Dictionary<string, string>(StringComparer.Ordinal);
            var secretRefs = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var from in container.Maps("envFrom"))
            {
                if (from.At("configMapRef", "name") is string cm)
                {
                    if (!configMaps.TryGetValue(cm, out var data))
                    {
                        problems.Add($"{where}: envFrom: no ConfigMap {cm}");
                        continue;
                    }

                    foreach (var (name, value) in data)
                    {
                        d.CheckEnvironment($"{where} (envFrom ConfigMap {cm})", assembly, name, value, problems, settings);
                    }
                }
                else if (from.At("secretRef", "name") is string secret && !secrets.ContainsKey(secret))
                {
                    problems.Add($"{where}: envFrom: no Secret {secret}");
                }
            }

            foreach (var env in container.Maps("env"))
            {
                var name = env.Str("name") ?? "";
                var value = env.Str("value");
                if (env.At("valueFrom", "secretKeyRef") is Dictionary<string, object?> secretRef)
                {
                    var (secret, key) = (secretRef.Str("name") ?? "", secretRef.Str("key") ?? "");
                    if (!secrets.TryGetValue(secret, out var keys) || !keys.Contains(key))
                    {
                        problems.Add($"{where}: env {name}: Secret {secret} has no key {key}");
                    }

                    secretRefs[name] = key;
                }
                else if (env.At("valueFrom", "configMapKeyRef") is Dictionary<string, object?> cmRef)
                {
                    if (!configMaps.TryGetValue(cmRef.Str("name") ?? "", out var data) || !data.TryGetValue(cmRef.Str("key") ?? "", out value))
                    {
                        problems.Add($"{where}: env {name}: ConfigMap {cmRef.Str("name")} has no key {cmRef.Str("key")}");
                    }
                }
                else if (env.At("valueFrom", "fieldRef", "fieldPath") is string field)
                {
                    fieldRefs[name] = field;
                    value = null;
                }

                if (value is not null && name.Contains("PASSWORD", StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add($"{where}: env {name} is written in the manifest; take it from a Secret (secretKeyRef)");
                }

                if (value is not null && value.Contains("Password=", StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add($"{where}: env {name} holds a connection string with a password; take it from a Secret");
                }

                // Values from elsewhere stand as "$(from X)": known to be set, not type-checked.
                d.CheckEnvironment($"{where} env", assembly, name, value ?? $"$(from {name})", problems, settings);
            }

            // Connection strings: an in-cluster host must be a Service of these manifests, on one of its ports.
            foreach (var (name, key) in secretRefs.Where(s => s.Key is "ORCHESTRATOR_ConnectionStrings__Orchestrator" or "ORCHESTRATOR_CLUSTER"))
            {
                if (secretValues.TryGetValue(key, out var connection))
                {
                    CheckConnection($"{where}: env {name} (secret key {key})", connection);
                }
            }

            if (project is not null)
            {
                d.CheckInvocation($"{where} command/args", project, ComposeChecks.Words(container.At("command")), ComposeChecks.Words(container.At("args")) ?? [], problems, settings);
            }

            var ports = container.Maps("ports").ToDictionary(
                p => p.Str("name") ?? p.Str("containerPort") ?? "",
                p => int.TryParse(p.Str("containerPort"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : -1,
                StringComparer.Ordinal);
            foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
            {
                if (container.Map(probe) is not { } p)
                {
                    continue;
                }

                var port = p.At("tcpSocket", "port") ?? p.At("httpGet", "port") ?? p.At("grpc", "port");
                if (port is string portText && Resolve(ports, portText) is null)
                {
                    problems.Add($"{where}: {probe} port {portText} is not a containerPort of the container");
                }
            }

            if (assembly == d.Facts.SiloAssembly)
            {
                CheckSilo(o, where, container, settings, fieldRefs, ports, project!);
            }
        }

        private void CheckSilo(K8sObject o, string where, Dictionary<string, object?> container, Dictionary<string, string?> settings,
            Dictionary<string, string> fieldRefs, Dictionary<string, int> ports, ProjectImage image)
        {
            var (silo, gateway) = d.SiloPorts(settings);
            if (!ports.Values.Contains(silo) || !ports.Values.Contains(gateway))
            {
                problems.Add($"{where}: containerPorts {string.Join(", ", ports.Values)} must include the silo port {silo} and the gateway port {gateway}");
            }

            foreach (var (name, port) in ports.Where(p => p.Value != silo && p.Value != gateway))
            {
                problems.Add($"{where}: containerPort {name}={port} is neither the silo port {silo} nor the gateway port {gateway}");
            }

            foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
            {
                if (container.Map(probe) is not { } p)
                {
                    problems.Add($"{where}: no {probe}");
                }
                else if ((p.At("tcpSocket", "port") ?? p.At("httpGet", "port")) is string port && Resolve(ports, port) is { } number && number != silo && number != gateway)
                {
                    problems.Add($"{where}: {probe} probes {number}, which the silo does not listen on ({silo}, {gateway})");
                }
            }

            if (fieldRefs.GetValueOrDefault("ORCHESTRATOR_AdvertiseAddress") != "status.podIP")
            {
                problems.Add($"{where}: ORCHESTRATOR_AdvertiseAddress must come from the pod IP (valueFrom.fieldRef.fieldPath: status.podIP), or the silo advertises loopback");
            }

            if (Deployment.Setting(settings, "ConnectionStrings:Orchestrator") is null)
            {
                problems.Add($"{where}: no connection string (ORCHESTRATOR_ConnectionStrings__Orchestrator from the Secret)");
            }

            var role = Deployment.Setting(settings, "Role")?.ToLowerInvariant();
            if (role is null)
            {
                problems.Add($"{where}: no role (--role or ORCHESTRATOR_Role): the silo would run as 'all'");
            }
            else if (role == "coordinator" && o.Kind == "Deployment" && o.Doc.At("spec", "replicas") as string is { } replicas && replicas != "1")
            {
                problems.Add($"{where}: the coordinator Deployment runs {replicas} replicas; it is one");
            }
            else if (role == "worker" && o.Kind == "Deployment")
            {
                var limit = container.At("resources", "limits", "nvidia.com/gpu") as string;
                var request = container.At("resources", "requests", "nvidia.com/gpu") as string;
                if (limit is null || !int.TryParse(limit, out var gpus) || gpus < 1)
                {
                    problems.Add($"{where}: a worker requests nvidia.com/gpu in resources.limits (extended resources are set as limits)");
                    return;
                }

                if (request is not null && request != limit)
                {
                    problems.Add($"{where}: nvidia.com/gpu request {request} differs from its limit {limit}");
                }

                if (Deployment.Setting(settings, "Worker:DeviceKind") != "cuda")
                {
                    problems.Add($"{where}: a GPU worker sets ORCHESTRATOR_Worker__DeviceKind=cuda (or --device cuda)");
                }

                // A drained stop needs the drain plus time to release the leases before the kubelet's SIGKILL.
                var drain = double.TryParse(Deployment.Setting(settings, "Worker:DrainSeconds"), System.Globalization.NumberStyles.Float,
                    System.Globalization.CultureInfo.InvariantCulture, out var seconds) ? seconds : 0;
                var grace = o.Doc.At("spec", "template", "spec", "terminationGracePeriodSeconds") as string;
                var graceSeconds = int.TryParse(grace, out var g) ? g : 30;
                if (graceSeconds < drain + 30)
                {
                    problems.Add($"{where}: terminationGracePeriodSeconds {graceSeconds} does not cover Worker:DrainSeconds={drain} plus 30 s to release leases");
                }

                if (Deployment.Setting(settings, "Worker:DeviceCount") is { } count && count != limit)
                {
                    problems.Add($"{where}: Worker:DeviceCount={count}, but the container gets {limit} GPU(s)");
                }

                if (d.TorchBackendOf(image) != "cuda")
                {
                    problems.Add($"{where}: image {image.Name} is not built with the cuda torch backend (deploy/docker/README.md)");
                }
            }
        }

        public void CheckService(K8sObject service)
        {
            var selector = service.Doc.At("spec", "selector") as Dictionary<string, object?> ?? [];
            var pods = objects.Where(o => Workloads.Contains(o.Kind) && selector.Count > 0
                && selector.All(s => PodLabels(o).GetValueOrDefault(s.Key) as string == s.Value as string)).ToList();
            if (pods.Count == 0)
            {
                problems.Add($"{service}: its selector matches no workload of {Folder}");
                return;
            }

            foreach (var port in service.Doc.At("spec", "ports") as List<object?> ?? [])
            {
                var target = port.Str("targetPort") ?? port.Str("port") ?? "";
                foreach (var pod in pods)
                {
                    var containerPorts = PodSpec(pod).Maps("containers").SelectMany(c => c.Maps("ports")).ToDictionary(
                        p => p.Str("name") ?? p.Str("containerPort") ?? "",
                        p => int.TryParse(p.Str("containerPort"), out var n) ? n : -1,
                        StringComparer.Ordinal);
                    if (Resolve(containerPorts, target) is null)
                    {
                        problems.Add($"{service}: targetPort {target} is not a containerPort of {pod.Kind}/{pod.Name}");
                    }
                }
            }
        }

        private void CheckConnection(string where, string connection)
        {
            var (host, port) = Deployment.ConnectionTarget(connection);
            var name = host?.Split('.')[0];
            var service = objects.FirstOrDefault(o => o.Kind == "Service" && o.Name == name);
            if (service is null)
            {
                problems.Add($"{where}: Host={host} is not a Service of {Folder}");
            }
            else if (!(service.Doc.At("spec", "ports") as List<object?> ?? []).Any(p => p.Str("port") == port.ToString(CultureInfo.InvariantCulture)))
            {
                problems.Add($"{where}: Port={port} is not a port of Service {name}");
            }
        }

        private static int? Resolve(Dictionary<string, int> ports, string port) =>
            int.TryParse(port, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
                ? ports.Values.Contains(n) ? n : null
                : ports.TryGetValue(port, out var named) ? named : null;
    }
}
