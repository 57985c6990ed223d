using System.Globalization;
using System.Net;
using System.Text.Json;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>The dashboard of a real cluster: a coordinator process with <c>--dashboard-port</c> and a worker with <c>--dashboard</c>.</summary>
[Collection(PostgresServer.CollectionName)]
public sealed class DashboardClusterTests(PostgresServer postgres, ITestOutputHelper output)
{
    [Fact]
    public async Task The_coordinators_dashboard_shows_every_silo_with_its_role_and_counters()
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, "dashboard");
        var port = DashboardTests.FreePort();
        var coordinator = await cluster.StartSiloAsync("coordinator", "coordinator", "--dashboard-port", port.ToString(CultureInfo.InvariantCulture));
        Assert.Contains($"dashboard=http://127.0.0.1:{port}/", coordinator.Log);
        await cluster.StartSiloAsync("worker-1", "worker", "--dashboard");

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string[] addresses;
        while (true)
        {
            using var counters = JsonDocument.Parse(await http.GetStringAsync("DashboardCounters"));
            addresses = counters.RootElement.GetProperty("hosts").EnumerateArray()
                .Where(h => h.GetProperty("status").GetString() == "Active")
                .Select(h => h.GetProperty("siloAddress").GetString()!)
                .ToArray();
            if (addresses.Length == 2 || DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(250);
        }

        Assert.Equal(2, addresses.Length);
        var roles = new List<string>();
        foreach (var address in addresses)
        {
            using var metadata = JsonDocument.Parse(await http.GetStringAsync($"SiloMetadata/{address}"));
            roles.Add(metadata.RootElement.GetProperty("orchestrator.role").GetString()!);

            // Served by the dashboard's grain service on that silo: the worker's fails unless it has --dashboard.
            foreach (var page in new[] { "SiloCounters", "SiloProperties" })
            {
                using var response = await http.GetAsync($"{page}/{address}");
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{page}/{address}: {(int)response.StatusCode}\n{cluster.Logs()}");
            }
        }

        Assert.Equal(["coordinator", "worker"], roles.Order());
        Assert.DoesNotContain("unknown SystemTarget", cluster.Logs());
        output.WriteLine(string.Join(", ", addresses));
    }
}
