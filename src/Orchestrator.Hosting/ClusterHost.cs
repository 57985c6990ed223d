using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Grains;
using Orchestrator.Results;
using Orchestrator.Worker;
using Orleans.Configuration;
using Orleans.Metadata;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Orchestrator.Hosting;

/// <summary>
/// Builds silos and clients for cluster mode: Orleans ADO.NET clustering and the results store in the same
/// PostgreSQL database (schema applied beforehand by <c>orchestrator db migrate</c>; the runtime role needs no DDL).
/// Coordinator silos host the sweep and queue grains; worker silos host none and run the pull worker.
/// </summary>
public static class ClusterHost
{
    public const string Invariant = "Npgsql";

    public static IHost BuildSilo(ClusterSiloOptions cluster, WorkerOptions worker, Action<ILoggingBuilder>? logging = null)
    {
        cluster.Validate();
        worker.Validate();
        var siloPort = cluster.SiloPort == 0 ? FreePort() : cluster.SiloPort;
        var gatewayPort = cluster.GatewayPort == 0 ? FreePort() : cluster.GatewayPort;

        var dashboard = cluster.DashboardOptions;
        var builder = DashboardExtensions.CreateHostBuilder(dashboard);
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IResultStore>(_ => ResultStores.Postgres(cluster.ConnectionString));
        builder.Services.AddHostedService<SchemaCheck>();
        if (cluster.Role != SiloRole.Coordinator)
        {
            builder.Services.AddOrchestratorWorker(w => Copy(worker, w));
        }

        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            silo.ConfigureEndpoints(cluster.Advertised, siloPort, gatewayPort, listenOnAnyHostAddress: cluster.AdvertiseAddress is not null);
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = Invariant;
                o.ConnectionString = cluster.ConnectionString;
            });
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));

            // The strongly consistent directory: when a silo crashes, the survivors rebuild the directory ranges it owned from
            // their own activations. With the default (eventually consistent) directory, every grain whose registration lived
            // on the crashed silo is deactivated: a worker killed by the OOM killer could restart the queue on the coordinator,
            // which forgot every running lease (the other workers' cells were stopped and trained again) and the count of
            // expired attempts that marks a poison cell. Orleans still marks this directory as evaluation-only (it has shipped
            // since 9.0); tests/Orchestrator.IntegrationTests/Cluster/FaultInjectionTests.cs kills workers and checks the queue
            // is activated once.
#pragma warning disable ORLEANSEXP003
            silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
            if (cluster.FastFailureDetection)
            {
                silo.Configure<ClusterMembershipOptions>(Tune);
            }

            if (cluster.Tls is { } tls)
            {
                silo.UseTls(tls.Certificate, tls.Configure);
            }

            silo.UseSiloMetadata(Metadata(cluster.Role, worker));
            if (cluster.Role == SiloRole.Worker)
            {
                // Workers host no coordination grains: the queue survives a worker being killed.
                silo.Configure<GrainTypeOptions>(o =>
                {
                    o.Classes.Remove(typeof(SweepGrain));
                    o.Classes.Remove(typeof(TrialQueueGrain));
                });
            }

            silo.AddOrchestratorDashboard(dashboard);
        });
        return builder.BuildHost();
    }

    /// <summary>
    /// An Orleans client of the cluster (for the CLI), with its results store; <paramref name="tls"/>: the cluster's certificate,
    /// when its silos use TLS (a client without it, or with another, cannot talk to them).
    /// </summary>
    public static IHost BuildClient(string connectionString, string clusterId = "orchestrator", string serviceId = "orchestrator", ClusterTls? tls = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IResultStore>(_ => ResultStores.Postgres(connectionString));
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = serviceId;
            });
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = Invariant;
                o.ConnectionString = connectionString;
            });
            if (tls is not null)
            {
                client.UseTls(tls.Certificate, tls.Configure);
            }

            client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(30));
        });
        return builder.Build();
    }

    /// <summary>Failure detection measured in NOTES-orleans-postgres.md: dead declared in 1.2–1.9 s.</summary>
    public static void Tune(ClusterMembershipOptions o)
    {
        o.ProbeTimeout = TimeSpan.FromSeconds(1);
        o.NumMissedProbesLimit = 2;
        o.NumVotesForDeathDeclaration = 1;
        o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
        o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(30);
    }

    /// <summary>What a silo advertises (visible in the membership table and to placement).</summary>
    public static Dictionary<string, string> Metadata(SiloRole role, WorkerOptions worker) => new()
    {
        ["orchestrator.role"] = role.ToString().ToLowerInvariant(),
        ["orchestrator.worker_id"] = role == SiloRole.Coordinator ? "" : worker.WorkerId,
        ["orchestrator.device"] = worker.DeviceKind,
        ["orchestrator.device_count"] = worker.DeviceCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["orchestrator.slots"] = (role == SiloRole.Coordinator ? 0 : worker.EffectiveSlots(Environment.ProcessorCount)).ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["orchestrator.pack"] = worker.PackSize == 0 ? $"auto(<={worker.MaxPackSize})" : worker.PackSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["orchestrator.memory_bytes"] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static void Copy(WorkerOptions from, WorkerOptions to)
    {
        to.WorkerId = from.WorkerId;
        to.Slots = from.Slots;
        to.PollInterval = from.PollInterval;
        to.DeviceKind = from.DeviceKind;
        to.DeviceCount = from.DeviceCount;
        to.SimulateCellSeconds = from.SimulateCellSeconds;
        to.CallTimeout = from.CallTimeout;
        to.PackSize = from.PackSize;
        to.MaxPackSize = from.MaxPackSize;
        to.ArtifactDirectory = from.ArtifactDirectory;
        to.Threads = from.Threads;
        to.WorkersOnMachine = from.WorkersOnMachine;
        to.DrainSeconds = from.DrainSeconds;
        to.SpoolDirectory = from.SpoolDirectory;
        to.ResultWritePatience = from.ResultWritePatience;
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Refuses to start on a database whose schema is missing or from another version.</summary>
    private sealed class SchemaCheck(IResultStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => ResultStores.RequireSchemaAsync(store, cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
