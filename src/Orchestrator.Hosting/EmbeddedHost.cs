using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>
/// Builds the embedded mode: an in-process Orleans silo (localhost clustering) hosting the sweep and queue
/// grains, the pull worker in the same process, and the SQLite results store under the data directory.
/// </summary>
public static class EmbeddedHost
{
    public const string ClusterId = "orchestrator-embedded";
    public const string ServiceId = "orchestrator";

    public static IHost Build(EmbeddedOptions options, Action<ILoggingBuilder>? logging = null)
    {
        options.Validate();
        Directory.CreateDirectory(Path.GetFullPath(options.DataDirectory));
        var dataLock = DataDirectoryLock.Acquire(options.DataDirectory);
        try
        {
            return Build(options, logging, dataLock);
        }
        catch
        {
            dataLock.Dispose();
            throw;
        }
    }

    private static IHost Build(EmbeddedOptions options, Action<ILoggingBuilder>? logging, DataDirectoryLock dataLock)
    {
        var siloPort = options.SiloPort == 0 ? ClusterHost.FreePort() : options.SiloPort;
        var gatewayPort = options.GatewayPort == 0 ? ClusterHost.FreePort() : options.GatewayPort;

        var dashboard = options.DashboardOptions;
        var builder = DashboardExtensions.CreateHostBuilder(dashboard);
        builder.Logging.ClearProviders();
        if (logging is not null)
        {
            logging(builder.Logging);
        }

        // Made by a factory (and resolved below) so that the container disposes it with the host: the data directory stays
        // this process's until then.
        builder.Services.AddSingleton(_ => dataLock);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(Orchestrator.Grains.QueueRestore.Nothing);
        builder.Services.AddSingleton<IResultStore>(_ =>
        {
            var store = ResultStores.Sqlite(options.ResultsDatabasePath);
            store.EnsureSchemaAsync().GetAwaiter().GetResult();
            return store;
        });
        if (options.RunWorker)
        {
            builder.Services.AddOrchestratorWorker(w =>
            {
                w.Slots = options.WorkerSlots;
                w.PackSize = options.PackSize;
                w.ArtifactDirectory = options.ArtifactDirectory;
            });
        }

        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: ServiceId, clusterId: ClusterId);
            silo.AddMemoryGrainStorage("Default");
            silo.AddOrchestratorDashboard(dashboard);
        });
        var host = builder.BuildHost();
        host.Services.GetRequiredService<DataDirectoryLock>();
        return host;
    }
}
