using System.CommandLine;
using Orchestrator.Web;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>ui</c>: serves the results page for the stored sweeps (embedded data directory or a cluster) without running anything;
/// and the <c>--ui-port</c>/<c>--ui-bind</c>/<c>--ui-token-file</c> options of <c>run</c> and <c>demo</c>.
/// </summary>
internal static class UiCommand
{
    public static void Register(RootCommand root, Option<string> dataDir, Option<bool> verbose)
    {
        var shared = new SessionOptions(root, dataDir, verbose);
        var port = new Option<int>("--port") { Description = "Port of the results page", Required = true };
        var (bind, tokenFile) = (Bind(), TokenFile());
        shared.Add("ui", "Serve the results web page (sweeps, live progress, results, plots, cells) for the stored sweeps; runs nothing. Ctrl-C stops it.",
                port, bind, tokenFile)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                var options = new WebUiOptions { Port = pr.GetValue(port), BindAddress = pr.GetValue(bind)!, TokenFile = pr.GetValue(tokenFile) };
                options.ResolveToken();
                await using var session = await shared.OpenAsync(pr, train: false, slots: 1, ct);
                await using var page = await WebUi.StartAsync(options, session.Services, ct);
                Console.WriteLine($"Results page: {page.LocalUrl}{(page.TokenRequired ? " (bearer token required)" : "")}; Ctrl-C stops it");
                await WaitForCancelAsync(ct);
                return 0;
            }));
    }

    public static Option<int?> Port() => new("--ui-port")
    {
        Description = "Serve the results web page on this port (http://127.0.0.1:PORT/); it keeps serving after the sweep ends, until Ctrl-C",
    };

    public static Option<string> Bind() => new("--bind")
    {
        Description = "Address the results page listens on; any but a loopback address needs a bearer token (ORCHESTRATOR_UI_TOKEN or --token-file)",
        DefaultValueFactory = _ => "127.0.0.1",
    };

    public static Option<string?> TokenFile() => new("--token-file") { Description = "File whose first line is the results page's bearer token" };

    /// <summary>Starts the page for <c>run</c>/<c>demo</c> (null without a port).</summary>
    public static async Task<WebUi?> StartAsync(int? port, string bind, string? tokenFile, IServiceProvider services, CancellationToken ct)
    {
        if (port is not { } p)
        {
            return null;
        }

        var page = await WebUi.StartAsync(new WebUiOptions { Port = p, BindAddress = bind, TokenFile = tokenFile }, services, ct);
        Console.WriteLine($"Results page: {page.LocalUrl}{(page.TokenRequired ? " (bearer token required)" : "")}");
        return page;
    }

    /// <summary>After the sweep: keeps the page up until Ctrl-C.</summary>
    public static async Task ServeUntilCancelledAsync(WebUi? page, CancellationToken ct)
    {
        if (page is null)
        {
            return;
        }

        Console.WriteLine($"Results page still serving at {page.LocalUrl}; Ctrl-C stops it");
        await WaitForCancelAsync(ct);
        await page.DisposeAsync();
    }

    /// <summary>
    /// Until Ctrl-C or SIGTERM. The signals are taken here as well as through <paramref name="ct"/>: the hosts in this process
    /// (the silo's console lifetime) take them for themselves, and the token alone was never cancelled.
    /// </summary>
    private static async Task WaitForCancelAsync(CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        void Stop(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }

        using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Stop);
        using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Stop);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C
        }
    }
}
