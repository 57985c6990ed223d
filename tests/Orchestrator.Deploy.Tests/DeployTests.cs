namespace Orchestrator.Deploy.Tests;

/// <summary>
/// deploy/ cannot run here (no Docker engine, no Kubernetes): these tests read every Dockerfile, compose file,
/// manifest, script and README under it and check each name they use against the sources.
/// </summary>
public sealed class DeployTests
{
    private static readonly Lazy<Deployment> Current = new(() => Deployment.Load(Repo.Current));

    private static Deployment D => Current.Value;

    private static void Empty(IEnumerable<string> problems) => Assert.True(!problems.Any(), string.Join('\n', problems));

    [Fact]
    public void Facts_are_read_from_the_sources()
    {
        var f = D.Facts;
        Assert.Equal("Orchestrator.Silo.dll", f.SiloAssembly);
        Assert.Equal("orchestrator.dll", f.CliAssembly);
        Assert.Equal("Role", f.SiloSwitches["--role"]);
        Assert.Equal("ConnectionStrings:Orchestrator", f.SiloSwitches["--cluster"]);
        Assert.Contains("--fast-membership", f.SiloFlagSwitches);
        Assert.Equal(["All", "Coordinator", "Worker"], f.SiloConfigKeys["Role"].EnumValues);
        Assert.Equal(["cpu", "cuda"], f.SiloConfigKeys["Worker:DeviceKind"].EnumValues);
        Assert.Equal("int", f.SiloConfigKeys["Worker:Slots"].Type);
        Assert.Contains("DataDirectory", f.SiloConfigKeys.Keys);
        Assert.DoesNotContain("ConnectionString", f.SiloConfigKeys.Keys); // overwritten after binding: no effect
        Assert.Equal("ORCHESTRATOR_", f.SiloEnvironmentPrefix);
        Assert.Equal((11111, 30000), (f.DefaultSiloPort, f.DefaultGatewayPort));
        Assert.Contains("db", f.CliCommands);
        Assert.Contains("submit", f.CliCommands);
        Assert.Contains("rerun-failed", f.CliCommands);
        Assert.DoesNotContain("migrate", f.CliCommands);
        Assert.Contains("migrate", f.CliSubcommands["db"]);
        Assert.Contains("--cluster", f.CliOptions);
        Assert.Contains("ORCHESTRATOR_CLUSTER", f.CliEnvironment);
        Assert.Equal(["cpu", "cuda"], f.TorchBackends.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_config_key_the_silo_binds_is_reachable_from_the_environment()
    {
        // Each ClusterSiloOptions / WorkerOptions setting that configuration can set, as ORCHESTRATOR_<Key>.
        foreach (var key in D.Facts.SiloConfigKeys.Keys)
        {
            var problems = new List<string>();
            D.CheckEnvironment("test", D.Facts.SiloAssembly, "ORCHESTRATOR_" + key.Replace(":", "__", StringComparison.Ordinal), null, problems, new Dictionary<string, string?>());
            Assert.Empty(problems);
        }

        Assert.Superset(
            new HashSet<string>(["Role", "ClusterId", "ServiceId", "SiloPort", "GatewayPort", "AdvertiseAddress", "FastFailureDetection",
                "ConnectionStrings:Orchestrator", "Worker:Slots", "Worker:WorkerId", "Worker:DeviceKind", "Worker:DeviceCount",
                "Worker:SimulateCellSeconds", "DataDirectory"], StringComparer.OrdinalIgnoreCase),
            D.Facts.SiloConfigKeys.Keys.ToHashSet(StringComparer.OrdinalIgnoreCase));
    }

    [Fact]
    public void Dockerfiles_use_official_bases_existing_sources_and_run_what_they_publish() => Empty(D.ImageProblems);

    [Fact]
    public void Images_cover_coordinator_cpu_worker_gpu_worker_and_cli()
    {
        var silo = D.Images.Where(i => D.AssemblyOf(i) == D.Facts.SiloAssembly).ToList();
        Assert.Contains(silo, i => D.TorchBackendOf(i) == "cuda");
        Assert.Contains(silo, i => D.TorchBackendOf(i) == "cpu");
        Assert.Contains(D.Images, i => D.AssemblyOf(i) == D.Facts.CliAssembly);
    }

    [Fact]
    public void Dockerignore_keeps_build_outputs_and_local_state_out_of_the_context()
    {
        var ignore = DockerIgnore.Load(Repo.Current, "deploy/docker/Dockerfile.silo");
        Assert.True(ignore.Excludes("src/Orchestrator.Silo/bin/Release/net10.0/linux-x64/Orchestrator.Silo.dll"));
        Assert.True(ignore.Excludes("src/Orchestrator.Core/obj/project.assets.json"));
        Assert.True(ignore.Excludes(".orchestrator/results.db"));
        Assert.True(ignore.Excludes("deploy/compose/.env"));
        Assert.False(ignore.Excludes("src/Orchestrator.Silo/Program.cs"));
        Assert.False(ignore.Excludes("deploy/docker/silo-entrypoint.sh"));
    }

    [Fact]
    public void Compose_names_only_real_images_switches_commands_variables_and_ports() => Empty(ComposeChecks.CheckAll(D));

    [Fact]
    public void Compose_has_postgres_migration_coordinator_and_scalable_workers()
    {
        var services = Yaml.LoadMapping(Repo.Current.Read("deploy/compose/compose.yaml")).Map("services")!;
        Assert.Equal("postgres", Images.SplitTag(services["postgres"].Str("image")!).Name);
        Assert.NotNull(services["postgres"].At("healthcheck"));
        Assert.Equal(["db", "migrate"], ComposeChecks.Words(services["migrate"].At("command")));
        Assert.Equal("service_healthy", services["migrate"].At("depends_on", "postgres", "condition"));
        Assert.Equal(["--role", "coordinator"], ComposeChecks.Words(services["coordinator"].At("command")));
        Assert.Equal(["--role", "worker"], ComposeChecks.Words(services["worker"].At("command")));
        Assert.Equal("service_completed_successfully", services["worker"].At("depends_on", "migrate", "condition"));
    }

    [Fact]
    public void Kubernetes_manifests_name_only_real_images_switches_commands_variables_secrets_and_ports() => Empty(KubernetesChecks.CheckAll(D));

    [Fact]
    public void Kubernetes_has_migration_job_one_coordinator_and_gpu_workers()
    {
        var objects = KubernetesChecks.LoadObjects(Repo.Current, []);
        var job = Assert.Single(objects, o => o.Kind == "Job");
        Assert.Equal(["db", "migrate"], ComposeChecks.Words(job.Doc.At("spec", "template", "spec").Maps("containers").Single().At("args")));
        var coordinator = Assert.Single(objects, o => o.Kind == "Deployment" && o.Name == "orchestrator-coordinator");
        Assert.Equal("1", coordinator.Doc.At("spec", "replicas"));
        var worker = Assert.Single(objects, o => o.Kind == "Deployment" && o.Name == "orchestrator-worker");
        var container = worker.Doc.At("spec", "template", "spec").Maps("containers").Single();
        Assert.Equal("1", container.At("resources", "limits", "nvidia.com/gpu"));
        Assert.Contains(container.Maps("env"), e => e.Str("name") == "ORCHESTRATOR_Worker__DeviceKind" && e.Str("value") == "cuda");
        Assert.Contains(objects, o => o.Kind == "StatefulSet" && o.Name == "orchestrator-postgres");
    }

    [Fact]
    public void Shell_scripts_parse() => Empty(DocAndScriptChecks.CheckScriptSyntax(Repo.Current));

    [Fact]
    public void Local_cluster_script_passes_bash_n()
    {
        Assert.Empty(DocAndScriptChecks.SyntaxProblems(DocAndScriptChecks.LocalCluster, Repo.Current.Read(DocAndScriptChecks.LocalCluster)));
    }

    [Fact]
    public void Local_cluster_script_runs_real_assemblies_with_real_switches() => Empty(DocAndScriptChecks.CheckLocalCluster(D));

    [Fact]
    public void Local_cluster_gives_each_worker_its_share_of_the_cores()
    {
        // `start N` starts N workers that each divide the cores by N (the silo's --workers-on-machine, a real switch).
        var line = Repo.Current.Read(DocAndScriptChecks.LocalCluster).Split('\n').Single(l => l.TrimStart().StartsWith("start_silo \"worker-", StringComparison.Ordinal));
        var words = Images.ShellWords(line);
        int at = words.IndexOf("--workers-on-machine");
        Assert.True(at > 0 && words[at + 1] is "$workers" or "\"$workers\"", line);
        Assert.Equal("Worker:WorkersOnMachine", D.Facts.SiloSwitches["--workers-on-machine"]);
    }

    [Fact]
    public void Readmes_name_existing_files_images_services_objects_and_commands() => Empty(DocAndScriptChecks.CheckReadmes(D));
}
