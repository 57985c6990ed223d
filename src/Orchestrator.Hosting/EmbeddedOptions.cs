namespace Orchestrator.Hosting;

/// <summary>Settings of the embedded mode: one in-process silo with both roles and a SQLite results file.</summary>
public sealed class EmbeddedOptions
{
    /// <summary>Folder for the results database and caches (default <c>.orchestrator</c> in the working directory).</summary>
    public string DataDirectory { get; set; } = ".orchestrator";

    /// <summary>Cells trained at once in this process, each on one torch thread; 0 (the default): one per core.</summary>
    public int WorkerSlots { get; set; }

    /// <summary>Packed training: 0 calibrates K per pack group, 1 trains every cell alone, N packs up to N cells (see WorkerOptions.PackSize).</summary>
    public int PackSize { get; set; }

    /// <summary>Whether this process trains cells (false for query commands such as <c>status</c>).</summary>
    public bool RunWorker { get; set; } = true;

    /// <summary>Silo and gateway ports on loopback; 0 picks free ports (so several embedded hosts can coexist).</summary>
    public int SiloPort { get; set; }

    public int GatewayPort { get; set; }

    /// <summary>Port of the Orleans Dashboard on loopback (<c>--dashboard-port</c>); null: no dashboard.</summary>
    public int? DashboardPort { get; set; }

    /// <summary>The address the dashboard listens on (<c>--dashboard-address</c>); null: loopback only.</summary>
    public string? DashboardAddress { get; set; }

    public DashboardHostOptions? DashboardOptions => DashboardPort is null
        ? null
        : new DashboardHostOptions { Port = DashboardPort, BindAddress = DashboardAddress is null ? System.Net.IPAddress.Loopback : System.Net.IPAddress.Parse(DashboardAddress) };

    public string ResultsDatabasePath => Path.Combine(Path.GetFullPath(DataDirectory), "results.db");

    /// <summary>The artifact store of the embedded worker: <c>artifacts</c> under <see cref="DataDirectory"/>.</summary>
    public string ArtifactDirectory => Path.Combine(Path.GetFullPath(DataDirectory), "artifacts");

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ArgumentException("DataDirectory must not be empty");
        }

        if (WorkerSlots is < 0 or > 64)
        {
            throw new ArgumentException($"WorkerSlots must be 0 (one per core) or between 1 and 64, got {WorkerSlots}");
        }

        if (PackSize is < 0 or > 256)
        {
            throw new ArgumentException($"PackSize must be 0 (calibrate), 1 (no packing) or up to 256, got {PackSize}");
        }

        if (SiloPort is < 0 or > 65535 || GatewayPort is < 0 or > 65535)
        {
            throw new ArgumentException("ports must be between 0 and 65535");
        }

        if (DashboardPort is < 1 or > 65535)
        {
            throw new ArgumentException($"--dashboard-port must be between 1 and 65535, got {DashboardPort}");
        }

        if (DashboardAddress is not null && (DashboardPort is null || !System.Net.IPAddress.TryParse(DashboardAddress, out _)))
        {
            throw new ArgumentException(DashboardPort is null
                ? "--dashboard-address needs --dashboard-port (the address the page listens on)"
                : $"--dashboard-address must be an IP address (0.0.0.0 for every address), got '{DashboardAddress}'");
        }
    }
}
