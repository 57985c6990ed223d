using System.Globalization;
using System.Net;
using Orchestrator.Hosting;

namespace Orchestrator.IntegrationTests;

/// <summary>The dashboard's page listens on loopback unless an address is given explicitly; an advertised silo address never widens it.</summary>
public sealed class DashboardBindTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-dash-bind-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void A_silo_with_an_advertised_address_still_serves_the_dashboard_on_loopback_unless_told_otherwise()
    {
        var advertised = new ClusterSiloOptions { ConnectionString = "Host=x", AdvertiseAddress = "10.1.2.3", DashboardPort = 8080 };
        advertised.Validate();
        Assert.Equal(IPAddress.Loopback, advertised.DashboardOptions!.BindAddress);
        Assert.Equal("http://127.0.0.1:8080/", advertised.DashboardOptions.LocalUrl);

        var everywhere = new ClusterSiloOptions { ConnectionString = "Host=x", AdvertiseAddress = "10.1.2.3", DashboardPort = 8080, DashboardAddress = "0.0.0.0" };
        everywhere.Validate();
        Assert.Equal(IPAddress.Any, everywhere.DashboardOptions!.BindAddress);

        Assert.Contains("needs --dashboard-port", Assert.Throws<ArgumentException>(() =>
            new ClusterSiloOptions { ConnectionString = "Host=x", DashboardAddress = "0.0.0.0" }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("must be an IP address", Assert.Throws<ArgumentException>(() =>
            new ClusterSiloOptions { ConnectionString = "Host=x", DashboardPort = 8080, DashboardAddress = "everywhere" }.Validate()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_running_dashboard_socket_is_bound_to_127_0_0_1_only()
    {
        var port = DashboardTests.FreePort();
        using var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, RunWorker = false, DashboardPort = port });
        await host.StartAsync();
        try
        {
            // The kernel's table of listening TCP sockets: local address (hex, little-endian IPv4) and port, state 0A = LISTEN.
            var hexPort = port.ToString("X4", CultureInfo.InvariantCulture);
            var listening = File.ReadAllLines("/proc/net/tcp").Concat(File.ReadAllLines("/proc/net/tcp6")).Skip(1)
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f[3] == "0A" && f[1].EndsWith(":" + hexPort, StringComparison.Ordinal))
                .Select(f => f[1][..f[1].IndexOf(':', StringComparison.Ordinal)])
                .ToList();
            Assert.Equal(["0100007F"], listening); // 127.0.0.1, and nothing on 0.0.0.0 or ::
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
