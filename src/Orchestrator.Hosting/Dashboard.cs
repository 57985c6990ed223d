using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Dashboard;

namespace Orchestrator.Hosting;

/// <summary>
/// A silo's part in the Orleans Dashboard. Every silo of a cluster whose dashboard is served somewhere collects its
/// own statistics (<c>--dashboard</c>); a silo with a <see cref="Port"/> (<c>--dashboard-port</c>) also serves the
/// page and its JSON endpoints: plain HTTP, no authentication, on loopback unless <see cref="BindAddress"/> names another
/// address explicitly (<c>--dashboard-address</c>); an advertised silo address never widens it.
/// </summary>
public sealed class DashboardHostOptions
{
    /// <summary>Port of the dashboard's page; null: this silo only collects its statistics for a dashboard served elsewhere.</summary>
    public int? Port { get; set; }

    /// <summary>The address the page listens on: loopback unless given (<c>0.0.0.0</c> for every address).</summary>
    public IPAddress BindAddress { get; set; } = IPAddress.Loopback;

    /// <summary>The address to open in a browser (127.0.0.1 when it listens on loopback or every address); null without a port.</summary>
    public string? LocalUrl => Port is { } port
        ? $"http://{(IPAddress.IsLoopback(BindAddress) || BindAddress.Equals(IPAddress.Any) ? "127.0.0.1" : BindAddress.ToString())}:{port}/"
        : null;

    public void Validate()
    {
        if (Port is not { } port)
        {
            return;
        }

        if (port is < 1 or > 65535)
        {
            throw new ArgumentException($"--dashboard-port must be between 1 and 65535, got {port}");
        }

        // Checked before the host starts: Kestrel starts after the silo (which would have joined the cluster by
        // then), and its error, once unwrapped, no longer names the port.
        try
        {
            using var probe = new TcpListener(BindAddress, port);
            probe.Start();
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException($"--dashboard-port {port}: the port is not available ({ex.Message})", ex);
        }
    }
}

/// <summary>
/// The Orleans Dashboard (package Microsoft.Orleans.Dashboard) on a silo: its grains, grain service and call profiler
/// in the silo, and, with a port, its page and JSON endpoints served by Kestrel from the silo's own host, which is
/// then a web host (<see cref="CreateHostBuilder"/>, <see cref="BuildHost"/>).
/// </summary>
public static class DashboardExtensions
{
    /// <summary>The host builder of a silo: a generic host, or with a dashboard port a web host whose only endpoints are the dashboard's.</summary>
    public static IHostApplicationBuilder CreateHostBuilder(DashboardHostOptions? dashboard)
    {
        dashboard?.Validate();
        if (dashboard?.Port is not { } port)
        {
            return Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        }

        var web = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        web.WebHost.UseKestrelCore();
        web.WebHost.ConfigureKestrel(k => k.Listen(dashboard.BindAddress, port));
        web.Services.AddRouting();
        return web;
    }

    /// <summary>
    /// Adds the dashboard's services to a silo whose host came from <see cref="CreateHostBuilder"/> with the same
    /// options. Without options the silo hosts none of the dashboard's grains (they would fail to activate there).
    /// </summary>
    public static ISiloBuilder AddOrchestratorDashboard(this ISiloBuilder silo, DashboardHostOptions? dashboard)
    {
        if (dashboard is null)
        {
            silo.Configure<GrainTypeOptions>(o => o.Classes.RemoveWhere(c => c.Assembly == typeof(DashboardOptions).Assembly));
        }
        else
        {
            silo.AddDashboard();
        }

        return silo;
    }

    /// <summary>Builds the host; a web host gets the dashboard's endpoints at its root.</summary>
    public static IHost BuildHost(this IHostApplicationBuilder builder)
    {
        switch (builder)
        {
            case HostApplicationBuilder generic:
                return generic.Build();
            case WebApplicationBuilder web:
                var app = web.Build();
                app.MapOrleansDashboard();
                return app;
            default:
                throw new ArgumentException($"unexpected host builder {builder.GetType()}", nameof(builder));
        }
    }
}
