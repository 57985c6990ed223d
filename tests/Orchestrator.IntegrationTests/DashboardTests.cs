using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Hosting;
using Orchestrator.IntegrationTests.Cluster;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests;

/// <summary>The Orleans Dashboard (<c>--dashboard-port</c>) on an embedded host, fetched over real HTTP.</summary>
public sealed class DashboardTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-dash-");

    public void Dispose() => _dir.Delete(recursive: true);

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private EmbeddedOptions Options(int? dashboardPort) =>
        new() { DataDirectory = _dir.FullName, RunWorker = false, DashboardPort = dashboardPort };

    [Fact]
    public async Task The_dashboard_serves_its_page_and_reports_the_silo_and_the_sweep_grains()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var port = FreePort();
        var clock = Stopwatch.StartNew();
        using var host = EmbeddedHost.Build(Options(port));
        await host.StartAsync(cts.Token);
        output.WriteLine($"embedded host with dashboard started in {clock.ElapsedMilliseconds} ms");

        // A sweep grain activation for the dashboard to count.
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await grains.GetGrain<ISweepGrain>("dashboard-probe").GetProgressAsync();

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        using (var page = await http.GetAsync("", cts.Token))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Orleans", await page.Content.ReadAsStringAsync(cts.Token), StringComparison.OrdinalIgnoreCase);
        }

        var types = await http.GetStringAsync("GrainTypes", cts.Token);
        Assert.Contains("Orchestrator.Grains.SweepGrain", types);
        Assert.Contains("Orchestrator.Grains.TrialQueueGrain", types);

        // The counters are refreshed at most once a second: wait for the sweep grain to show up.
        JsonElement counters;
        while (true)
        {
            using var response = await http.GetAsync("DashboardCounters", cts.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            counters = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cts.Token)).RootElement.Clone();
            if (counters.GetProperty("simpleGrainStats").EnumerateArray()
                .Any(g => g.GetProperty("grainType").GetString() == "Orchestrator.Grains.SweepGrain"))
            {
                break;
            }

            await Task.Delay(250, cts.Token);
        }

        var silo = Assert.Single(counters.GetProperty("hosts").EnumerateArray());
        Assert.Equal("Active", silo.GetProperty("status").GetString());
        Assert.Equal(1, counters.GetProperty("totalActiveHostCount").GetInt32());
        output.WriteLine($"sweep grain seen by the dashboard {clock.ElapsedMilliseconds} ms after the build");
        await host.StopAsync(CancellationToken.None);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(65536)]
    public void A_dashboard_port_out_of_range_is_rejected_before_anything_starts(int port)
    {
        var error = Assert.Throws<ArgumentException>(() => EmbeddedHost.Build(Options(port)));
        Assert.Equal($"--dashboard-port must be between 1 and 65535, got {port}", error.Message);
    }

    [Fact]
    public void A_dashboard_port_in_use_is_rejected_with_the_port_in_the_message()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        var error = Assert.Throws<InvalidOperationException>(() => EmbeddedHost.Build(Options(port)));
        Assert.StartsWith($"--dashboard-port {port}: the port is not available", error.Message);
    }

    [Theory]
    [InlineData("worker", "70", "--dashboard-port is for the coordinator (or --role all)")]
    [InlineData("coordinator", "65536", "--dashboard-port must be between 1 and 65535, got 65536")]
    [InlineData("coordinator", "http", "DashboardPort")]
    public async Task The_silo_process_rejects_a_bad_dashboard_port_in_one_line(string role, string port, string expected)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { LocalCluster.SiloDll(), "--role", role, "--cluster", "Host=127.0.0.1;Port=1;Database=none", "--dashboard-port", port })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        var lines = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        output.WriteLine(string.Join("\n", lines));
        Assert.Equal(2, process.ExitCode);
        var line = Assert.Single(lines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
    }
}
