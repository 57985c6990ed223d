using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
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

    private Session(IHost host, bool embedded)
    {
        _host = host;
        Embedded = embedded;
    }

    public bool Embedded { get; }

    public IServiceProvider Services => _host.Services;

    public IGrainFactory Grains => _host.Services.GetRequiredService<IGrainFactory>();

    public IResultStore Store => _host.Services.GetRequiredService<IResultStore>();

    /// <summary>The results store alone (no silo): PostgreSQL for a cluster connection, else the embedded SQLite file under <paramref name="dataDir"/>.</summary>
    public static IResultStore OpenStore(string? clusterOption, string dataDir) =>
        ClusterConnection(clusterOption) is { } connection
            ? ResultStores.Postgres(connection)
            : ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = dataDir }.ResultsDatabasePath);

    public static string? ClusterConnection(string? option) =>
        !string.IsNullOrWhiteSpace(option) ? option : Environment.GetEnvironmentVariable("ORCHESTRATOR_CLUSTER") is { Length: > 0 } env ? env : null;

    public static async Task<Session> OpenAsync(string? cluster, string clusterId, string dataDir, bool train, int slots,
        Action<ILoggingBuilder>? logging, CancellationToken ct)
    {
        if (cluster is null)
        {
            var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = dataDir, WorkerSlots = slots, RunWorker = train }, logging);
            await host.StartAsync(ct);
            return new Session(host, embedded: true);
        }

        var client = ClusterHost.BuildClient(cluster, clusterId);
        var logger = client.Services.GetRequiredService<ILoggerFactory>().CreateLogger("cli");
        // The gateway list comes from the membership table; a cluster that is starting may have none yet.
        var pipeline = GrainCalls.Create(logger, maxAttempts: 5, callTimeout: TimeSpan.FromSeconds(30), maxDelay: TimeSpan.FromSeconds(3));
        await pipeline.ExecuteAsync(async token => await client.StartAsync(token), ct);
        await ResultStores.RequireSchemaAsync(client.Services.GetRequiredService<IResultStore>(), ct);
        return new Session(client, embedded: false);
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

    public Option<string> ClusterId { get; } = new Option<string>("--cluster-id") { Description = "Orleans cluster id", DefaultValueFactory = _ => "orchestrator" };

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
        command.Options.Add(ClusterId);
        command.Options.Add(dataDir);
        command.Options.Add(verbose);
        root.Subcommands.Add(command);
        return command;
    }

    public Task<Session> OpenAsync(ParseResult pr, bool train, int slots, CancellationToken ct) =>
        Session.OpenAsync(Session.ClusterConnection(pr.GetValue(Cluster)), pr.GetValue(ClusterId)!, pr.GetValue(dataDir)!, train,
            Math.Max(1, slots), CliApp.HostLogging(pr.GetValue(verbose)), ct);
}
