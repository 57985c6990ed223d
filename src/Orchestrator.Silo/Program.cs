using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Hosting;
using Orchestrator.Web;
using Orchestrator.Worker;

// Orchestrator.Silo: a long-running silo process.
//   cluster mode:  --role coordinator|worker|all --cluster "<PostgreSQL connection string>" [--cluster-id ID] …
//   single host:   --role all (no connection string): localhost clustering and a SQLite results file.
// Every switch can also come from the environment, ORCHESTRATOR_<Key> (e.g. ORCHESTRATOR_Role=worker,
// ORCHESTRATOR_ConnectionStrings__Orchestrator=…, ORCHESTRATOR_Worker__Slots=2). The connection string can come from a
// file instead (--cluster-file PATH, or ORCHESTRATOR_CLUSTER_FILE as for the CLI), so that no password is in the process list.
var switches = new Dictionary<string, string>(StringComparer.Ordinal)
{
    ["--role"] = "Role",
    ["--cluster"] = "ConnectionStrings:Orchestrator",
    ["--cluster-file"] = "CLUSTER_FILE",
    ["--cluster-id"] = "ClusterId",
    ["--service-id"] = "ServiceId",
    ["--silo-port"] = "SiloPort",
    ["--gateway-port"] = "GatewayPort",
    ["--advertise-address"] = "AdvertiseAddress",
    ["--fast-membership"] = "FastFailureDetection",
    ["--slots"] = "Worker:Slots",
    ["--pack"] = "Worker:PackSize",
    ["--max-pack"] = "Worker:MaxPackSize",
    ["--worker-id"] = "Worker:WorkerId",
    ["--device"] = "Worker:DeviceKind",
    ["--device-count"] = "Worker:DeviceCount",
    ["--simulate-cell-seconds"] = "Worker:SimulateCellSeconds",
    ["--data-dir"] = "DataDirectory",
    ["--artifacts"] = "Worker:ArtifactDirectory",
    ["--threads"] = "Worker:Threads",
    ["--workers-on-machine"] = "Worker:WorkersOnMachine",
    ["--drain-seconds"] = "Worker:DrainSeconds",
    ["--spool"] = "Worker:SpoolDirectory",
    ["--dashboard"] = "Dashboard",
    ["--dashboard-port"] = "DashboardPort",
    ["--dashboard-address"] = "DashboardAddress",
    ["--ui-port"] = "Ui:Port",
    ["--ui-bind"] = "Ui:BindAddress",
    ["--ui-token-file"] = "Ui:TokenFile",
    // The keys of ORCHESTRATOR_TLS_CERT and ORCHESTRATOR_TLS_CERT_PASSWORD_FILE, as for the CLI. The password itself has no
    // switch (arguments are visible to every user): ORCHESTRATOR_TLS_CERT_PASSWORD or the file.
    ["--tls-cert"] = "TLS_CERT",
    ["--tls-cert-password-file"] = "TLS_CERT_PASSWORD_FILE",
};

var normalized = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    if (args[i] is "-h" or "--help")
    {
        Console.WriteLine("Usage: Orchestrator.Silo [--role coordinator|worker|all] [--cluster CONNECTION | --cluster-file PATH] [--cluster-id ID] " +
                          "[--silo-port N] [--gateway-port N] [--advertise-address IP] [--fast-membership] [--slots N] [--pack 0|1|N] [--max-pack N] " +
                          "[--device cpu|cuda] [--device-count N] [--worker-id ID] [--data-dir DIR] [--artifacts DIR] [--threads N] [--workers-on-machine N] " +
                          "[--drain-seconds N (on SIGTERM, let running cells finish this long, then release them)] [--spool DIR] " +
                          "[--dashboard-port N (coordinator, all)] [--dashboard-address IP (default 127.0.0.1)] [--dashboard (workers of a cluster with a dashboard)] " +
                          "[--ui-port N [--ui-bind ADDR] [--ui-token-file FILE] (the results page; coordinator, all)] " +
                          "[--tls-cert FILE.pfx (mutual TLS with the cluster's certificate; password from --tls-cert-password-file FILE or env ORCHESTRATOR_TLS_CERT_PASSWORD)]");
        return 0;
    }

    if (!switches.ContainsKey(args[i]))
    {
        Console.Error.WriteLine($"error: unknown argument '{args[i]}' (see --help)");
        return 2;
    }

    normalized.Add(args[i]);
    if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
    {
        normalized.Add(args[++i]);
    }
    else if (args[i] == "--fast-membership" || args[i] == "--dashboard")
    {
        normalized.Add("true");
    }
    else
    {
        Console.Error.WriteLine($"error: {args[i]} needs a value");
        return 2;
    }
}

var config = new ConfigurationBuilder()
    .AddEnvironmentVariables("ORCHESTRATOR_")
    .AddCommandLine([.. normalized], switches)
    .Build();

var cluster = new ClusterSiloOptions();
var worker = new WorkerOptions();
var ui = new WebUiOptions();
IHost host;
Orchestrator.Core.Paths.HomeLocation home;
try
{
    config.Bind(cluster);
    config.GetSection("Worker").Bind(worker);
    config.GetSection("Ui").Bind(ui);
    if (ui.Port != 0)
    {
        ui.ResolveToken(); // refuse to start without a token on a non-loopback address
    }

    // The CLI's rule for the data directory (cached bases, artifacts, datasets): --data-dir, else $ORCHESTRATOR_HOME (or the older
    // $ORCHESTRATOR_DATA_DIR), else the nearest .orchestrator/ at or above the working directory, else ~/.local/share/orchestrator.
    // A worker that looked elsewhere than `orchestrator pretrain` pretrained a cached base again.
    home = Orchestrator.Core.Paths.OrchestratorHome.Locate(config["DataDirectory"]);
    Orchestrator.Training.BaseModelCache.DefaultDataDirectory = home.Path;

    // ORCHESTRATOR_CLUSTER and ORCHESTRATOR_CLUSTER_FILE arrive as the keys CLUSTER and CLUSTER_FILE.
    // An explicit connection string wins over a file.
    var explicitConnection = config.GetConnectionString("Orchestrator");
    cluster.ConnectionString = ClusterConnection.Resolve(explicitConnection,
        string.IsNullOrWhiteSpace(explicitConnection) ? config["CLUSTER_FILE"] : null, config["CLUSTER"], null) ?? "";
    cluster.Tls = ClusterTls.Resolve(config["TLS_CERT"], config["TLS_CERT_PASSWORD_FILE"], config["TLS_CERT_PASSWORD"]);
    Action<ILoggingBuilder> logging = l => l.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
        .SetMinimumLevel(LogLevel.Information)
        .AddFilter("Orleans", Environment.GetEnvironmentVariable("ORCHESTRATOR_ORLEANS_LOG") == "info" ? LogLevel.Information : LogLevel.Warning)
        .AddFilter("Microsoft", LogLevel.Warning);
    if (cluster.ConnectionString.Length == 0)
    {
        if (cluster.Tls is not null)
        {
            Console.Error.WriteLine("error: --tls-cert is for cluster mode (a single-host silo listens on loopback only): give --cluster-file PATH too");
            return 2;
        }

        if (cluster.Role != SiloRole.All)
        {
            Console.Error.WriteLine($"error: --role {cluster.Role.ToString().ToLowerInvariant()} needs cluster mode: give --cluster-file PATH (a file holding the PostgreSQL connection string) or --cluster \"<connection string>\"");
            return 2;
        }

        host = EmbeddedHost.Build(new EmbeddedOptions
        {
            DataDirectory = home.Path,
            WorkerSlots = worker.Slots,
            PackSize = worker.PackSize,
            SiloPort = cluster.SiloPort,
            GatewayPort = cluster.GatewayPort,
            DashboardPort = cluster.DashboardPort,
            DashboardAddress = cluster.DashboardAddress,
        }, logging);
    }
    else
    {
        host = ClusterHost.BuildSilo(cluster, worker, logging);
    }
}
catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 2;
}

using (host)
{
    try
    {
        await host.StartAsync();
    }
    catch (Exception ex)
    {
        Console.Error.WriteLine($"error: the silo could not start: {ex.GetBaseException().Message}");
        return 1;
    }

    WebUi? page = null;
    if (ui.Port != 0)
    {
        try
        {
            page = await WebUi.StartAsync(ui, host.Services);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException)
        {
            Console.Error.WriteLine($"error: the results page could not start: {ex.Message}");
            await host.StopAsync();
            return 2;
        }
    }

    var dashboard = cluster.DashboardOptions?.LocalUrl is { } url ? $" dashboard={url}" : "";
    var results = page is null ? "" : $" results-page={page.LocalUrl}";
    Console.WriteLine($"Silo ready: role={cluster.Role.ToString().ToLowerInvariant()} cluster={cluster.ClusterId} pid={Environment.ProcessId}{dashboard}{results} data={home}");
    await host.WaitForShutdownAsync();
    if (page is not null)
    {
        await page.DisposeAsync();
    }
}

return 0;
