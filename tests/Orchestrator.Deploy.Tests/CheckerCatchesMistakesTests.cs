namespace Orchestrator.Deploy.Tests;

/// <summary>
/// Proof that the checks can fail: each case changes one real file in memory (the repository is not touched) in
/// a way that would break a deployment, and expects a problem naming it. A check that cannot see the mistake
/// fails its case here.
/// </summary>
public sealed class CheckerCatchesMistakesTests
{
    private const string Silo = "deploy/docker/Dockerfile.silo";
    private const string Cli = "deploy/docker/Dockerfile.cli";
    private const string Compose = "deploy/compose/compose.yaml";
    private const string K8s = "deploy/k8s/";

    public static TheoryData<string, string, string, string> Mistakes() => new()
    {
        // Dockerfiles and images
        { Silo, "COPY build/ build/", "COPY buildx/ buildx/", "source 'buildx/' does not exist" },
        { Silo, "COPY build/ build/\n", "", "needs build/LibTorchSharp.targets" },
        { Cli, "COPY sweeps/ sweeps/\n", "", "needs sweeps/demo.yaml" },
        { Silo, "ENTRYPOINT [\"/app/silo-entrypoint.sh\"]", "ENTRYPOINT [\"dotnet\", \"/app/Orchestrator.Worker.dll\"]", "runs Orchestrator.Worker.dll" },
        { Cli, "\"/app/orchestrator.dll\"", "\"/app/Orchestrator.Cli.dll\"", "runs Orchestrator.Cli.dll" },
        { Cli, "COPY --from=build /out /app", "COPY --from=build /out /opt/cli", "does not copy the publish output" },
        { Silo, "FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime", "FROM someone/dotnet-runtime:10.0 AS runtime", "neither an official base image" },
        { Silo, "FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime", "FROM mcr.microsoft.com/dotnet/runtime:10.0 AS runtime", "needs the ASP.NET Core shared framework" },
        { Cli, "FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime", "FROM mcr.microsoft.com/dotnet/runtime:10.0 AS runtime", "needs the ASP.NET Core shared framework" },
        { Silo, "FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build", "FROM mcr.microsoft.com/dotnet/sdk AS build", "pinned" },
        { Silo, "AS build\nARG TORCH_BACKEND\n", "AS build\n", "global ARG not redeclared" },
        { Silo, "EXPOSE 11111 30000", "EXPOSE 11111 3000", "EXPOSE 11111 3000" },
        { Silo, "src/Orchestrator.Silo/Orchestrator.Silo.csproj", "src/Orchestrator.Sylo/Orchestrator.Sylo.csproj", "no such project" },
        { Silo, "silo-entrypoint.sh /app/silo-entrypoint.sh", "silo-entrypoint.sh /app/entry.sh", "ENTRYPOINT /app/silo-entrypoint.sh is neither" },
        { "deploy/docker/silo-entrypoint.sh", "/app/Orchestrator.Silo.dll", "/app/Orchestrator.Silos.dll", "runs Orchestrator.Silos.dll" },
        { ".dockerignore", "tests/\n", "tests/\nsrc/\n", "excluded from the build context" },
        { "deploy/docker/README.md", "--build-arg TORCH_BACKEND=cuda", "--build-arg TORCH_BACKEND=rocm", "torch backend 'rocm'" },
        { "deploy/docker/README.md", "-f deploy/docker/Dockerfile.cli", "-f deploy/docker/Dockerfile.tool", "Dockerfile.tool does not exist" },

        // compose
        { Compose, "command: [\"--role\", \"coordinator\"]", "command: [\"--rol\", \"coordinator\"]", "'--rol' is not a switch" },
        { Compose, "ORCHESTRATOR_Worker__Slots:", "ORCHESTRATOR_Worker__Slot:", "ORCHESTRATOR_Worker__Slot is no configuration key" },
        { Compose, "ORCHESTRATOR_SiloPort: \"11111\"", "ORCHESTRATOR_SiloPort: \"11112\"", "probes port 11111" },
        { Compose, "ORCHESTRATOR_GatewayPort: \"30000\"", "ORCHESTRATOR_GatewayPort: \"thirty\"", "GatewayPort is a int" },
        { Compose, "ORCHESTRATOR_Worker__DeviceKind: cpu", "ORCHESTRATOR_Worker__DeviceKind: gpu", "must be one of cpu, cuda" },
        { Compose, "command: [\"db\", \"migrate\"]", "command: [\"db\", \"migrat\"]", "has the subcommands migrate" },
        { Compose, "image: orchestrator-cli:latest", "image: orchestrator-tool:latest", "'orchestrator-tool:latest' is not one the project builds" },
        { Compose, "image: postgres:17", "image: postgres:latest", "pinned" },
        { Compose, "ORCHESTRATOR_CLUSTER: \"Host=postgres;", "ORCHESTRATOR_CLUSTER: \"Host=db;", "Host=db is not a postgres service" },
        { Compose, "ORCHESTRATOR_CLUSTER: \"Host", "ORCHESTRATOR_CLUSTR: \"Host", "ORCHESTRATOR_CLUSTR is not read by the CLI" },
        { Compose, "Username=orchestrator;Password=${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (see deploy/compose/.env.example)}", "Username=orchestrator;Password=hunter2", "literal password" },
        { Compose, "migrate:\n        condition: service_completed_successfully\n    healthcheck", "migrate:\n        condition: service_started\n    healthcheck", "must start after the schema migration" },
        { Compose, "../k8s/postgres/init-runtime-role.sh:", "../k8s/postgres/init-role.sh:", "init-role.sh does not exist" },
        { Compose, "dockerfile: deploy/docker/Dockerfile.silo\n  args:\n    TORCH_BACKEND: cpu", "dockerfile: deploy/docker/Dockerfile.silo\n  args:\n    TORCH_BACKEND: cuda", "builds orchestrator-silo with TORCH_BACKEND=" },
        { Compose, "  worker:\n    image: orchestrator-silo:latest\n", "  worker:\n    image: orchestrator-silo:latest\n    container_name: worker\n", "container_name prevents" },
        { Compose, "  ORCHESTRATOR_ConnectionStrings__Orchestrator:", "  ORCHESTRATOR_ConnectionString:", "no connection string" },
        { "deploy/compose/.env.example", "ORCHESTRATOR_RUNTIME_PASSWORD=", "RUNTIME_PASSWORD=", "not listed in deploy/compose/.env.example" },

        // Kubernetes
        { K8s + "worker.yaml", "            limits:\n              memory: 32Gi\n              nvidia.com/gpu: 1", "            limits:\n              memory: 32Gi", "requests nvidia.com/gpu" },
        { K8s + "worker.yaml", "              value: cuda", "              value: cpu", "DeviceKind=cuda" },
        { K8s + "worker.yaml", "terminationGracePeriodSeconds: 360", "terminationGracePeriodSeconds: 60", "does not cover Worker:DrainSeconds=300" },
        { K8s + "worker.yaml", "image: orchestrator-silo-gpu:latest", "image: orchestrator-silo:latest", "not built with the cuda torch backend" },
        { K8s + "worker.yaml", "args: [\"--role\", \"worker\"]", "args: [\"--role\", \"worker\", \"--slots\"]", "--slots needs a value" },
        { K8s + "worker.yaml", "ORCHESTRATOR_Worker__DeviceCount\n              value: \"1\"", "ORCHESTRATOR_Worker__DeviceCount\n              value: \"2\"", "Worker:DeviceCount=2, but the container gets 1 GPU(s)" },
        { K8s + "worker.yaml", "name: orchestrator-config", "name: orchestrator-cfg", "no ConfigMap orchestrator-cfg" },
        { K8s + "coordinator.yaml", "containerPort: 30000", "containerPort: 30001", "must include the silo port 11111 and the gateway port 30000" },
        { K8s + "coordinator.yaml", "tcpSocket:\n              port: gateway", "tcpSocket:\n              port: gatewy", "readinessProbe port gatewy" },
        { K8s + "coordinator.yaml", "fieldPath: status.podIP", "fieldPath: status.hostIP", "must come from the pod IP" },
        { K8s + "coordinator.yaml", "      targetPort: gateway", "      targetPort: gw", "targetPort gw" },
        { K8s + "coordinator.yaml", "  replicas: 1", "  replicas: 2", "runs 2 replicas" },
        { K8s + "configmap.yaml", "ORCHESTRATOR_ServiceId:", "ORCHESTRATOR_ServiceName:", "ORCHESTRATOR_ServiceName is no configuration key" },
        { K8s + "configmap.yaml", "ORCHESTRATOR_SiloPort: \"11111\"", "ORCHESTRATOR_SiloPort: \"11112\"", "the silo port 11112" },
        { K8s + "migrate-job.yaml", "args: [\"db\", \"migrate\"]", "args: [\"database\", \"migrate\"]", "'database' is not a command" },
        { K8s + "migrate-job.yaml", "key: migration-connection", "key: migrate-connection", "has no key migrate-connection" },
        { K8s + "migrate-job.yaml", "image: orchestrator-cli:latest", "image: ghcr.io/someone/orchestrator-cli:1.0", "'ghcr.io/someone/orchestrator-cli:1.0' is neither" },
        { K8s + "kustomization.yaml", "  - worker.yaml", "  - workers.yaml", "workers.yaml does not exist" },
        { K8s + "kustomization.yaml", "10-runtime-role.sh=postgres/init-runtime-role.sh", "10-runtime-role.sh=postgres/init.sh", "init.sh does not exist" },
        { K8s + "secrets.env.example", "Host=orchestrator-postgres;Port=5432;Database=orchestrator;Username=orchestrator_runtime", "Host=orchestrator-db;Port=5432;Database=orchestrator;Username=orchestrator_runtime", "Host=orchestrator-db is not a Service" },
        { K8s + "cli-pod.yaml", "  namespace: orchestrator\n", "", "must set metadata.namespace" },
        { K8s + "cli-pod.yaml", "command: [\"sleep\", \"infinity\"]", "command: [\"/bin/bash\"]", "does not run a project output" },
        { K8s + "postgres.yaml", "serviceName: orchestrator-postgres", "serviceName: postgres", "serviceName postgres is not a Service" },

        // Scripts and READMEs
        { "deploy/local/cluster.sh", "--gateway-port \"$gp\"", "--gateway \"$gp\"", "'--gateway' is not a switch" },
        { "deploy/local/cluster.sh", "db migrate --cluster", "db upgrade --cluster", "'db upgrade'" },
        { "deploy/local/cluster.sh", "\nesac\n", "\n", "bash -n failed" },
        { "deploy/k8s/postgres/init-runtime-role.sh", "set -eu\n", "set -eu\nif then\n", "sh -n failed" },
        { "deploy/k8s/README.md", "deployment/orchestrator-worker", "deployment/orchestrator-workers", "no Deployment orchestrator-workers" },
        { "deploy/README.md", "deploy/local/cluster.sh", "deploy/local/cluster.bash", "deploy/local/cluster.bash, which does not exist" },
        { "deploy/README.md", "not run here", "verified", "must say that its files are checked by tests, not run here" },
        { "deploy/k8s/README.md", "not run here", "verified", "deploy/k8s/README.md: must say" },
        { "deploy/README.md", "run --rm cli submit sweeps/demo.yaml --watch", "run --rm cli submit sweeps/demo.yaml --wait", "'--wait' is not an option" },

        // The sources themselves: the checks read them, so a renamed switch or setting breaks the deployment files.
        { "src/Orchestrator.Silo/Program.cs", "[\"--role\"] = \"Role\",", "[\"--silo-role\"] = \"Role\",", "'--role' is not a switch" },
        { "src/Orchestrator.Worker/WorkerOptions.cs", "public int Slots { get; set; }", "public int SlotCount { get; set; }", "ORCHESTRATOR_Worker__Slots is no configuration key" },
        { "src/Orchestrator.Hosting/ClusterOptions.cs", "public int GatewayPort { get; set; } = 30000;", "public int GatewayPort { get; set; } = 40000;", "40000" },
        { "src/Orchestrator.Cli/Orchestrator.Cli.csproj", "<AssemblyName>orchestrator</AssemblyName>", "<AssemblyName>orch</AssemblyName>", "orchestrator.dll" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void A_wrong_file_is_reported(string file, string find, string replace, string expected)
    {
        var original = Repo.Current.Read(file);
        Assert.True(original.Contains(find, StringComparison.Ordinal), $"the case no longer applies: {file} has no '{find}'");
        var repo = new Overlay(Repo.Current, new Dictionary<string, string?> { [file] = original.Replace(find, replace, StringComparison.Ordinal) });

        var problems = AllProblems(repo);

        Assert.NotEmpty(problems);
        Assert.True(problems.Any(p => p.Contains(expected, StringComparison.Ordinal)),
            $"expected a problem containing '{expected}'; got:\n{string.Join('\n', problems)}");
    }

    [Fact]
    public void A_broken_manifest_written_from_scratch_is_reported()
    {
        const string manifest = """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: extra-worker
              namespace: orchestrator
            spec:
              selector:
                matchLabels: {app: extra}
              template:
                metadata:
                  labels: {app: other}
                spec:
                  containers:
                    - name: silo
                      image: orchestrator-silo-gpu:latest
                      args: ["--role", "worker", "--gpus", "2"]
                      env:
                        - {name: ORCHESTRATOR_Worker__Slots, value: "many"}
                        - {name: ORCHESTRATOR_Password, value: "secret"}
                      ports:
                        - {name: silo, containerPort: 11111}
            """;
        var repo = new Overlay(Repo.Current, new Dictionary<string, string?> { ["deploy/k8s/extra-worker.yaml"] = manifest });

        var problems = KubernetesChecks.CheckAll(Deployment.Load(repo));

        Assert.Contains(problems, p => p.Contains("selector.matchLabels does not match", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("'--gpus' is not a switch", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("ORCHESTRATOR_Worker__Slots=many", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("ORCHESTRATOR_Password is written in the manifest", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("gateway port 30000", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("no readinessProbe", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("ORCHESTRATOR_AdvertiseAddress must come from the pod IP", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("no connection string", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("requests nvidia.com/gpu", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("resources.requests", StringComparison.Ordinal));
    }

    [Fact]
    public void The_unchanged_repository_has_no_problems() => Assert.Empty(AllProblems(Repo.Current));

    private static List<string> AllProblems(IRepoFiles repo)
    {
        var d = Deployment.Load(repo);
        return
        [
            .. d.ImageProblems,
            .. ComposeChecks.CheckAll(d),
            .. KubernetesChecks.CheckAll(d),
            .. DocAndScriptChecks.CheckScriptSyntax(repo),
            .. DocAndScriptChecks.CheckLocalCluster(d),
            .. DocAndScriptChecks.CheckReadmes(d),
        ];
    }
}
