using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orchestrator.Core.Paths;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// Where a command talks to: a running cluster (an Orleans client + the PostgreSQL store, when
/// <c>--cluster</c> or <c>ORCHESTRATOR_CLUSTER</c> is given) or the embedded mode (an in-process silo over the
/// SQLite file under <c>--data-dir</c>; it trains only when the command needs work done).
/// </summary>
internal sealed class Session : IAsyncDisposable
{
    private readonly IHost _host;

    private Session(IHost host, bool embedded, string database)
    {
        _host = host;
        Embedded = embedded;
        Database = database;
    }

    public bool Embedded { get; }

    /// <summary>Which database this session reads and writes, for messages (the SQLite file and how its folder was chosen, or the cluster's host and port).</summary>
    public string Database { get; }

    public IServiceProvider Services => _host.Services;

    public IGrainFactory Grains => _host.Services.GetRequiredService<IGrainFactory>();

    public IResultStore Store => _host.Services.GetRequiredService<IResultStore>();

    /// <summary>
    /// The results store alone (no silo): PostgreSQL for a cluster connection, else the embedded SQLite file under
    /// <paramref name="dataDir"/>, which must already exist unless <paramref name="create"/> (a read never creates an empty one).
    /// The connection comes from <paramref name="clusterOption"/>, <paramref name="clusterFile"/> or the environment.
    /// </summary>
    public static IResultStore OpenStore(string? clusterOption, string dataDir, bool create = false, string? clusterFile = null)
    {
        if (ClusterConnection(clusterOption, clusterFile) is { } connection)
        {
            ClusterEndpoint = Endpoint(connection);
            return ResultStores.Postgres(connection);
        }

        var home = OrchestratorHome.Locate(dataDir);
        if (!create)
        {
            RequireDatabase(home);
        }

        return ResultStores.Sqlite(home.ResultsDatabase);
    }

    /// <summary>A read of a data directory without a results database is an error that names where it looked, and why there.</summary>
    public static void RequireDatabase(HomeLocation home)
    {
        if (!File.Exists(home.ResultsDatabase))
        {
            throw new ArgumentException(
                $"no results database at {home.ResultsDatabase} (data directory {home}): no sweep has run with this data directory. " +
                $"Give the one a sweep used with --data-dir DIR or ${OrchestratorHome.EnvironmentVariable}, or run from the folder that holds its {OrchestratorHome.FolderName}/.");
        }
    }

    /// <summary>
    /// The cluster database the running command opened (<c>host:port/database</c>), for the one-line error when it fails later;
    /// a process runs one command, so one value is enough.
    /// </summary>
    public static string? ClusterEndpoint { get; private set; }

    /// <summary><c>host:port/database</c> of a PostgreSQL connection string (for messages; never the password).</summary>
    public static string Endpoint(string connection)
    {
        try
        {
            var b = new NpgsqlConnectionStringBuilder(connection);
            return $"{(string.IsNullOrEmpty(b.Host) ? "localhost" : b.Host)}:{b.Port}/{b.Database}";
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"--cluster / ORCHESTRATOR_CLUSTER is not a valid PostgreSQL connection string: {ex.Message}", ex);
        }
    }

    /// <summary>The cluster's connection string from <c>--cluster</c>, <c>--cluster-file</c> or the environment; null: embedded mode.</summary>
    public static string? ClusterConnection(string? option, string? file = null) =>
        Hosting.ClusterConnection.Resolve(option, file, Environment.GetEnvironmentVariable("ORCHESTRATOR_CLUSTER"),
            Environment.GetEnvironmentVariable("ORCHESTRATOR_CLUSTER_FILE"));

    /// <summary>How long a command waits for a coordinator to join a cluster that has none yet (env <c>ORCHESTRATOR_COORDINATOR_WAIT_SECONDS</c>, default 60).</summary>
    private static TimeSpan CoordinatorPatience() =>
        double.TryParse(Environment.GetEnvironmentVariable("ORCHESTRATOR_COORDINATOR_WAIT_SECONDS"), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds >= 0
            ? TimeSpan.FromSeconds(seconds)
            : TimeSpan.FromSeconds(60);

    /// <param name="create">Whether the command may create the embedded database (submit, extend); reads refuse a missing one.</param>
    /// <param name="tls">The cluster's certificate when its silos use TLS (cluster mode only).</param>
    public static async Task<Session> OpenAsync(string? cluster, string clusterId, string dataDir, bool train, int slots,
        Action<ILoggingBuilder>? logging, CancellationToken ct, bool create = false, ClusterTls? tls = null)
    {
        if (cluster is null)
        {
            if (tls is not null)
            {
                throw new ArgumentException("--tls-cert is for a cluster (give --cluster-file or --cluster too); the embedded mode opens no port to others");
            }

            var home = OrchestratorHome.Locate(dataDir);
            if (!create)
            {
                RequireDatabase(home);
            }

            Orchestrator.Training.BaseModelCache.DefaultDataDirectory = home.Path;
            var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = home.Path, WorkerSlots = slots, RunWorker = train }, logging);
            await host.StartAsync(ct);
            return new Session(host, embedded: true, $"{home.ResultsDatabase} (data directory chosen by {home.Source})");
        }

        var endpoint = ClusterEndpoint = Endpoint(cluster);
        var client = ClusterHost.BuildClient(cluster, clusterId, tls: tls);
        var logger = client.Services.GetRequiredService<ILoggerFactory>().CreateLogger("cli");
        try
        {
            // The gateway list comes from the membership table; a cluster that is starting may have none yet.
            var pipeline = GrainCalls.Create(logger, maxAttempts: 5, callTimeout: TimeSpan.FromSeconds(30), maxDelay: TimeSpan.FromSeconds(3));
            await pipeline.ExecuteAsync(async token => await client.StartAsync(token), ct);
            await ResultStores.RequireSchemaAsync(client.Services.GetRequiredService<IResultStore>(), ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            client.Dispose();
            throw new ClusterUnreachableException(
                $"cannot reach the cluster database at {endpoint} (from --cluster or ORCHESTRATOR_CLUSTER), or its silos' gateways: " +
                $"{ex.GetBaseException().Message}{(tls is null ? " (a cluster whose silos use TLS also needs its certificate: --tls-cert)" : "")}", ex);
        }

        try
        {
            await CoordinatorWait.WaitAsync(client.Services.GetRequiredService<IGrainFactory>(), CoordinatorPatience(), ct);
        }
        catch (TimeoutException ex)
        {
            client.Dispose();
            throw new ClusterUnreachableException($"reached the cluster database at {endpoint}, but {ex.Message}", ex);
        }

        return new Session(client, embedded: false, $"the cluster database at {endpoint}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(CancellationToken.None);
        }
        finally
        {
            _host.Dispose();
        }
    }
}

/// <summary>The cluster (its PostgreSQL database) could not be reached when a command connected; the message names host and port.</summary>
internal sealed class ClusterUnreachableException(string message, Exception inner) : InvalidOperationException(message, inner);

/// <summary>
/// The options every command that talks to a sweep shares (<c>--cluster</c>, <c>--cluster-id</c>, <c>--data-dir</c>,
/// <c>--verbose</c>), how such a command is declared, and how its <see cref="Session"/> is opened.
/// </summary>
internal sealed class SessionOptions(RootCommand root, Option<string> dataDir, Option<bool> verbose)
{
    public Option<string?> Cluster { get; } = new Option<string?>("--cluster")
    {
        Description = "PostgreSQL connection string of a running cluster (or env ORCHESTRATOR_CLUSTER); embedded mode when absent",
    };

    /// <summary><c>--cluster-file</c>: the connection string from a file, so that a password never appears in the process list.</summary>
    public Option<string?> ClusterFile { get; } = ClusterFileOption();

    public static Option<string?> ClusterFileOption() => new Option<string?>("--cluster-file")
    {
        Description = "File holding the cluster's connection string (or env ORCHESTRATOR_CLUSTER_FILE); keeps a password out of the process list",
    };

    public Option<string> ClusterId { get; } = new Option<string>("--cluster-id") { Description = "Orleans cluster id", DefaultValueFactory = _ => "orchestrator" };

    /// <summary><c>--tls-cert</c>: the cluster's PKCS#12 certificate, for a cluster whose silos use TLS.</summary>
    public Option<string?> TlsCert { get; } = new Option<string?>("--tls-cert")
    {
        Description = "The cluster's certificate (PKCS#12 .pfx, or env ORCHESTRATOR_TLS_CERT) when its silos use TLS; password from --tls-cert-password-file or env ORCHESTRATOR_TLS_CERT_PASSWORD",
    };

    public Option<string?> TlsCertPasswordFile { get; } = new Option<string?>("--tls-cert-password-file")
    {
        Description = "File holding the password of --tls-cert (or env ORCHESTRATOR_TLS_CERT_PASSWORD_FILE, or the password in ORCHESTRATOR_TLS_CERT_PASSWORD)",
    };

    public Option<string> DataDir => dataDir;

    /// <summary>Declares a command with its own arguments and options plus the shared ones, and adds it to the root.</summary>
    public Command Add(string name, string description, params Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Argument a: command.Arguments.Add(a); break;
                case Option o: command.Options.Add(o); break;
            }
        }

        command.Options.Add(Cluster);
        command.Options.Add(ClusterFile);
        command.Options.Add(ClusterId);
        command.Options.Add(TlsCert);
        command.Options.Add(TlsCertPasswordFile);
        command.Options.Add(dataDir);
        command.Options.Add(verbose);
        root.Subcommands.Add(command);
        return command;
    }

    /// <param name="create">True for the commands that may start a new embedded database (submit, extend).</param>
    public Task<Session> OpenAsync(ParseResult pr, bool train, int slots, CancellationToken ct, bool create = false)
    {
        var cluster = Session.ClusterConnection(pr.GetValue(Cluster), pr.GetValue(ClusterFile));
        return Session.OpenAsync(cluster, pr.GetValue(ClusterId)!, pr.GetValue(dataDir)!, train,
            Math.Max(0, slots), CliApp.HostLogging(pr.GetValue(verbose)), ct, create, Tls(pr, cluster is not null));
    }

    /// <summary>
    /// The cluster's certificate from <c>--tls-cert</c> or <c>ORCHESTRATOR_TLS_CERT</c> with its password; the variables count
    /// only for a cluster (a shell that exports them for the cluster can still run embedded commands).
    /// </summary>
    private ClusterTls? Tls(ParseResult pr, bool cluster)
    {
        var certificate = pr.GetValue(TlsCert);
        var passwordFile = pr.GetValue(TlsCertPasswordFile);
        if (cluster)
        {
            certificate ??= Environment.GetEnvironmentVariable(ClusterTls.CertificateVariable);
            passwordFile ??= Environment.GetEnvironmentVariable(ClusterTls.PasswordFileVariable);
        }

        return ClusterTls.Resolve(certificate, passwordFile, Environment.GetEnvironmentVariable(ClusterTls.PasswordVariable));
    }
}
