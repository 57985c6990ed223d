using System.Net;

namespace Orchestrator.Hosting;

/// <summary>What a silo process does: coordinate sweeps, train cells, or both.</summary>
public enum SiloRole
{
    All,
    Coordinator,
    Worker,
}

/// <summary>
/// Settings of a silo in cluster mode (membership and results in PostgreSQL). Bound from configuration:
/// command-line switches of <c>Orchestrator.Silo</c> or environment variables <c>ORCHESTRATOR_…</c>; the
/// connection string comes from <c>ConnectionStrings:Orchestrator</c> (env <c>ORCHESTRATOR_ConnectionStrings__Orchestrator</c>)
/// and is never logged.
/// </summary>
public sealed class ClusterSiloOptions
{
    public SiloRole Role { get; set; } = SiloRole.All;

    public string ConnectionString { get; set; } = "";

    /// <summary>Orleans cluster id: silos and clients with the same id and database form one cluster.</summary>
    public string ClusterId { get; set; } = "orchestrator";

    public string ServiceId { get; set; } = "orchestrator";

    public int SiloPort { get; set; } = 11111;

    public int GatewayPort { get; set; } = 30000;

    /// <summary>Address other silos and clients use to reach this one (default: loopback, for one machine).</summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>
    /// Aggressive failure detection (a dead silo is declared in ~2 s instead of ~10–20 s): good for tests and a
    /// local cluster, risky under long GC or CPU stalls in production (NOTES-orleans-postgres.md).
    /// </summary>
    public bool FastFailureDetection { get; set; }

    /// <summary>
    /// Port of the Orleans Dashboard served by this silo (<c>--dashboard-port</c>); null: none. Coordinator and
    /// all-in-one silos only; on loopback unless <see cref="DashboardAddress"/> says otherwise.
    /// </summary>
    public int? DashboardPort { get; set; }

    /// <summary>
    /// The address the dashboard's page listens on (<c>--dashboard-address</c>, e.g. <c>0.0.0.0</c>); null: loopback only.
    /// The page is plain HTTP without authentication, so reaching it from other machines must be asked for explicitly.
    /// </summary>
    public string? DashboardAddress { get; set; }

    /// <summary>
    /// This silo collects its statistics for a dashboard served by another silo (<c>--dashboard</c>): needed on every
    /// worker of a cluster whose coordinator has <c>--dashboard-port</c>, or the worker's pages fail and the
    /// dashboard's call profiling may not be switched on anywhere. Implied by <see cref="DashboardPort"/>.
    /// </summary>
    public bool Dashboard { get; set; }

    /// <summary>This silo's part in the dashboard; null: none.</summary>
    public DashboardHostOptions? DashboardOptions => Dashboard || DashboardPort is not null
        ? new DashboardHostOptions { Port = DashboardPort, BindAddress = DashboardAddress is null ? IPAddress.Loopback : IPAddress.Parse(DashboardAddress) }
        : null;

    /// <summary>
    /// Mutual TLS on the silo and gateway ports with the cluster's certificate (<c>--tls-cert</c>, see <see cref="ClusterTls"/>);
    /// null: plain TCP. Set from the switches by the silo's entry point, never bound from configuration.
    /// </summary>
    public ClusterTls? Tls { get; set; }

    public IPAddress Advertised => AdvertiseAddress is null ? IPAddress.Loopback : IPAddress.Parse(AdvertiseAddress);

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException("cluster mode needs a PostgreSQL connection string (--cluster or ORCHESTRATOR_ConnectionStrings__Orchestrator)");
        }

        if (string.IsNullOrWhiteSpace(ClusterId) || string.IsNullOrWhiteSpace(ServiceId))
        {
            throw new ArgumentException("ClusterId and ServiceId must not be empty");
        }

        if (SiloPort is < 0 or > 65535 || GatewayPort is < 0 or > 65535)
        {
            throw new ArgumentException("SiloPort and GatewayPort must be between 0 and 65535 (0 picks a free port)");
        }

        if (AdvertiseAddress is not null && !IPAddress.TryParse(AdvertiseAddress, out _))
        {
            throw new ArgumentException($"AdvertiseAddress must be an IP address, got '{AdvertiseAddress}'");
        }

        if (DashboardPort is not null && Role == SiloRole.Worker)
        {
            throw new ArgumentException("--dashboard-port is for the coordinator (or --role all); give workers --dashboard so that its dashboard shows them");
        }

        if (DashboardPort is < 1 or > 65535)
        {
            throw new ArgumentException($"--dashboard-port must be between 1 and 65535, got {DashboardPort}");
        }

        if (DashboardAddress is not null && (DashboardPort is null || !IPAddress.TryParse(DashboardAddress, out _)))
        {
            throw new ArgumentException(DashboardPort is null
                ? "--dashboard-address needs --dashboard-port (the address the page listens on)"
                : $"--dashboard-address must be an IP address (0.0.0.0 for every address), got '{DashboardAddress}'");
        }
    }
}
