namespace Orchestrator.Deploy.Tests;

/// <summary>
/// The Kubernetes manifests restrict the Orleans silo and gateway ports (and PostgreSQL) to the orchestrator's own pods:
/// every pod template that opens one of those ports is selected by a NetworkPolicy of the kustomization whose every
/// ingress source is a pod selector matching only the orchestrator's pods (no ipBlock, no namespaceSelector).
/// </summary>
public sealed class NetworkPolicyTests
{
    private static readonly int[] GuardedPorts = [11111, 30000, 5432];

    [Fact]
    public void Silo_gateway_and_database_ports_accept_only_the_clusters_own_pods()
    {
        var problems = new List<string>();
        var repo = Repo.Current;
        var objects = KubernetesChecks.LoadObjects(repo, problems);
        Assert.Empty(problems);
        var kustomization = Yaml.LoadMapping(repo.Read(KubernetesChecks.Kustomization));
        var resources = kustomization.List("resources").OfType<string>().Select(r => RepoPath.Combine(KubernetesChecks.Folder, r)).ToHashSet();
        var policies = objects.Where(o => o.Kind == "NetworkPolicy" && resources.Contains(o.File)).ToList();
        Assert.NotEmpty(policies);

        // The pods of the orchestrator: every workload template's labels (the CLI pod included).
        var pods = objects.Select(o => (Object: o, Labels: TemplateLabels(o))).Where(p => p.Labels is not null).ToList();
        foreach (var (workload, labels) in pods)
        {
            var ports = workload.Doc.At("spec", "template", "spec", "containers") is List<object?> containers
                ? containers.SelectMany(c => c.List("ports")).Select(p => Convert.ToInt32(p.Str("containerPort"), System.Globalization.CultureInfo.InvariantCulture))
                    .Where(GuardedPorts.Contains).ToList()
                : [];
            if (ports.Count == 0)
            {
                continue;
            }

            var guarding = policies.Where(p => Matches(p.Doc.At("spec", "podSelector") as Dictionary<string, object?>, labels!)).ToList();
            if (guarding.Count == 0)
            {
                problems.Add($"{workload}: opens {string.Join(", ", ports)} but no NetworkPolicy of the kustomization selects its pods");
                continue;
            }

            foreach (var policy in guarding)
            {
                if (!policy.Doc.At("spec", "policyTypes").AsList().Contains("Ingress"))
                {
                    problems.Add($"{policy}: policyTypes lacks Ingress");
                }

                var rules = policy.Doc.At("spec", "ingress").AsList().OfType<Dictionary<string, object?>>().ToList();
                foreach (var source in rules.SelectMany(r => r.List("from")).OfType<Dictionary<string, object?>>())
                {
                    if (source.Keys.Any(k => k != "podSelector"))
                    {
                        problems.Add($"{policy}: an ingress source other than a pod selector ({string.Join(", ", source.Keys)})");
                        continue;
                    }

                    var selector = source.Map("podSelector");
                    if (selector is null || selector.Count == 0 || !pods.Any(p => Matches(selector, p.Labels!)))
                    {
                        problems.Add($"{policy}: a pod selector that selects every pod, or none of the orchestrator's");
                    }
                }

                if (rules.Any(r => r.List("from").Count == 0))
                {
                    problems.Add($"{policy}: an ingress rule without 'from' admits everyone");
                }
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        // The coordinator's and workers' pods are among those guarded.
        Assert.Contains(pods, p => p.Labels!.GetValueOrDefault("app.kubernetes.io/component") == "coordinator"
                                   && policies.Any(pol => Matches(pol.Doc.At("spec", "podSelector") as Dictionary<string, object?>, p.Labels!)));
        Assert.Contains(pods, p => p.Labels!.GetValueOrDefault("app.kubernetes.io/component") == "worker"
                                   && policies.Any(pol => Matches(pol.Doc.At("spec", "podSelector") as Dictionary<string, object?>, p.Labels!)));
    }

    private static Dictionary<string, string>? TemplateLabels(K8sObject o)
    {
        var labels = o.Kind == "Pod" ? o.Doc.At("metadata", "labels") : o.Doc.At("spec", "template", "metadata", "labels");
        return labels is Dictionary<string, object?> map ? map.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") : null;
    }

    /// <summary>Kubernetes label selector semantics for matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist).</summary>
    private static bool Matches(Dictionary<string, object?>? selector, Dictionary<string, string> labels)
    {
        if (selector is null)
        {
            return false;
        }

        var matchLabels = selector.Map("matchLabels") ?? [];
        if (matchLabels.Any(kv => labels.GetValueOrDefault(kv.Key) != kv.Value?.ToString()))
        {
            return false;
        }

        foreach (var e in selector.List("matchExpressions").OfType<Dictionary<string, object?>>())
        {
            var key = e.Str("key")!;
            var values = e.List("values").Select(v => v?.ToString()).ToList();
            var ok = e.Str("operator") switch
            {
                "In" => labels.TryGetValue(key, out var v) && values.Contains(v),
                "NotIn" => !labels.TryGetValue(key, out var v2) || !values.Contains(v2),
                "Exists" => labels.ContainsKey(key),
                "DoesNotExist" => !labels.ContainsKey(key),
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}

internal static class YamlListExtensions
{
    public static List<object?> AsList(this object? value) => value as List<object?> ?? [];
}
