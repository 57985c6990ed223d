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
