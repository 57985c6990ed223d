using System.Globalization;
using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Hosting;
using Orchestrator.Results;
using HttpResults = Microsoft.AspNetCore.Http.Results;

namespace Orchestrator.Web;

/// <summary>
/// The results page and its JSON API (docs/web.md), served by Kestrel on its own port beside an embedded host, a cluster client or
/// the coordinator silo: read-only, from the <see cref="IGrainFactory"/> and <see cref="IResultStore"/> of the process it runs in.
/// </summary>
public sealed class WebUi : IAsyncDisposable
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly WebApplication _app;

    private WebUi(WebApplication app, IReadOnlyList<string> urls, bool tokenRequired)
    {
        _app = app;
        Urls = urls;
        TokenRequired = tokenRequired;
    }

    /// <summary>The addresses it listens on (the actual port when 0 was asked for).</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <summary>Whether API requests need the bearer token.</summary>
    public bool TokenRequired { get; }

    /// <summary>The address to open in a browser on this machine.</summary>
    public string LocalUrl => Urls[0].Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/";

    /// <summary>Starts serving; the grains and the store come from <paramref name="services"/> (a silo's or a client's).</summary>
    /// <exception cref="ArgumentException">Bad options, or no token for a non-loopback address.</exception>
    public static async Task<WebUi> StartAsync(WebUiOptions options, IServiceProvider services, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        var token = options.ResolveToken();
        options.CheckPortFree();
        var api = new ResultsApi(services.GetRequiredService<IGrainFactory>(), services.GetRequiredService<IResultStore>());

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(WebUi).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        // The page runs inside a process that owns Ctrl-C (the command line or the silo): without this, its console lifetime
        // would take SIGINT/SIGTERM for itself and the process would not stop.
        builder.Services.AddSingleton<IHostLifetime, PassiveLifetime>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (options.BindAddress == "localhost")
            {
                k.Listen(IPAddress.Loopback, options.Port);
            }
            else
            {
                k.Listen(IPAddress.Parse(options.BindAddress), options.Port);
            }
        });
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/api"))
            {
                context.Response.Headers.CacheControl = "no-store";
                if (token is not null && !Authorized(context.Request, token))
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    await context.Response.WriteAsJsonAsync(new ApiError("a bearer token is required (Authorization: Bearer TOKEN, or ?access_token=TOKEN)"), Json);
                    return;
                }
            }

            await next(context);
        });
        Map(app, api);
        await app.StartAsync(ct);
        var urls = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        return new WebUi(app, urls, token is not null);
    }

    /// <summary>A lifetime that listens to no signal: the host process decides when the page stops (<see cref="DisposeAsync"/>).</summary>
    private sealed class PassiveLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static bool Authorized(HttpRequest request, string token)
    {
        var given = request.Headers.Authorization.ToString() is { } header && header.StartsWith("Bearer ", StringComparison.Ordinal)
            ? header["Bearer ".Length..].Trim()
            : request.Query["access_token"].ToString();
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(token));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    // ---------------------------------------------------------------- endpoints

    private static void Map(WebApplication app, ResultsApi api)
    {
        var stopping = app.Lifetime.ApplicationStopping;

        app.MapGet("/", () => Asset("index.html"));
        app.MapGet("/{file}", (string file) => Asset(file));

        app.MapGet("/api/sweeps", (HttpRequest r, CancellationToken ct) => Guard(async () =>
        {
            var sweeps = await api.SweepsAsync(ct);
            return Csv(r) ? CsvResult("sweeps.csv", Table(
                ["sweep_id", "name", "status", "submitted_at", "total", "done", "running", "pending", "failed", "blocked", "waiting", "complete", "elapsed_seconds", "eta_seconds"],
                sweeps.Select(s => new object?[] { s.SweepId, s.Name, s.Status, s.SubmittedAt, s.Total, s.Done, s.Running, s.Pending, s.Failed, s.Blocked, s.Waiting, s.Complete, s.ElapsedSeconds, s.EtaSeconds })))
                : JsonResult(sweeps);
        }));

        app.MapGet("/api/sweeps/{sweep}", (string sweep, HttpRequest r, CancellationToken ct) => Guard(async () =>
        {
            var view = await api.ProgressAsync(await api.FindSweepAsync(sweep, ct), ct);
            if (!Csv(r))
            {
                return JsonResult(view);
            }

            var states = view.Methods.SelectMany(m => m.Counts.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            return CsvResult("progress.csv", Table(["stage", "method", "total", .. states],
                view.Methods.Select(m => new object?[] { m.Stage, m.Method, m.Total }.Concat(states.Select(s => (object?)m.Counts.GetValueOrDefault(s))).ToArray())));
        }));

        app.MapGet("/api/sweeps/{sweep}/cells", (string sweep, HttpRequest r, int? offset, int? limit, string? state, string? method, CancellationToken ct) => Guard(async () =>
        {
            var (o, l) = (offset ?? 0, limit ?? 100);
            if (o < 0 || l is < 1 or > 10_000)
            {
                throw new ArgumentException("offset must be ≥ 0 and limit between 1 and 10000");
            }

            var page = await api.CellsAsync(await api.FindSweepAsync(sweep, ct), o, Csv(r) ? int.MaxValue : l, state, method, ct);
            if (!Csv(r))
            {
                return JsonResult(page);
            }

            var metrics = page.Cells.SelectMany(c => c.Metrics.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            return CsvResult("cells.csv", Table(
                ["key", "stage", "method", "size", "subsample", "seed", "split", "state", "attempts", "worker", "error", .. metrics.Select(m => "metric:" + m)],
                page.Cells.Select(c => new object?[] { c.Key, c.Stage, c.Method, c.Size, c.Subsample, c.Seed, c.Split, c.State, c.Attempts, c.Worker, c.Error }
                    .Concat(metrics.Select(m => (object?)c.Metrics.GetValueOrDefault(m))).ToArray())));
        }));

        app.MapGet("/api/sweeps/{sweep}/results", (string sweep, HttpRequest r, string? metric, string? by, CancellationToken ct) => Guard(async () =>
        {
            var report = await api.ReportAsync(await api.FindSweepAsync(sweep, ct), Blank(metric), Blank(by), null);
            return Csv(r) ? CsvResult("results.csv", report.Csv()) : HttpResults.Text(report.JsonText(), "application/json", Encoding.UTF8);
        }));

        app.MapGet("/api/sweeps/{sweep}/compare", (string sweep, HttpRequest r, string? a, string? b, string? metric, CancellationToken ct) => Guard(async () =>
        {
            if (Blank(a) is null || Blank(b) is null)
            {
                throw new ArgumentException("give the two methods to compare: ?a=METHOD&b=METHOD");
            }

            var report = await api.ReportAsync(await api.FindSweepAsync(sweep, ct), Blank(metric), null, (a!, b!));
            return Csv(r) ? CsvResult("compare.csv", report.Csv()) : HttpResults.Text(report.JsonText(), "application/json", Encoding.UTF8);
        }));

        app.MapGet("/api/sweeps/{sweep}/gap", (string sweep, HttpRequest r, string? metric, CancellationToken ct) => Guard(async () =>
        {
            var report = await api.ReportAsync(await api.FindSweepAsync(sweep, ct), Blank(metric), null, null);
            using var doc = JsonDocument.Parse(report.JsonText());
            var gap = doc.RootElement.GetProperty("generalization_gap");
            if (!Csv(r))
            {
                return HttpResults.Text(gap.GetRawText(), "application/json", Encoding.UTF8);
            }

            string[] columns = ["dataset", "split", "method", "size", "pairs", "mean_diff", "sd", "ci_low", "ci_high"];
            return CsvResult("gap.csv", Table(columns, gap.EnumerateArray().Select(g => columns.Select(c => (object?)JsonCell(g.GetProperty(c))).ToArray())));
        }));

        app.MapGet("/api/sweeps/{sweep}/plot", (string sweep, string? metric, CancellationToken ct) => Guard(async () =>
            JsonResult(await api.PlotAsync(await api.FindSweepAsync(sweep, ct), Blank(metric)))));

        app.MapGet("/api/sweeps/{sweep}/compute", (string sweep, HttpRequest r, CancellationToken ct) => Guard(async () =>
        {
            var view = await api.ComputeAsync(await api.FindSweepAsync(sweep, ct), ct);
            return Csv(r) ? CsvResult("compute.csv", Table(["method", "cells", "packed", "reused_training", "wall_seconds", "mean_seconds"],
                    view.Rows.Select(x => new object?[] { x.Method, x.Cells, x.Packed, x.ReusedTraining, x.WallSeconds, x.MeanSeconds })))
                : JsonResult(view);
        }));

        app.MapGet("/api/sweeps/{sweep}/selection", (string sweep, HttpRequest r, CancellationToken ct) => Guard(async () =>
        {
            var report = await api.SelectionAsync(await api.FindSweepAsync(sweep, ct), ct);
            return Csv(r) ? CsvResult("selection.csv", Table(["method", "size", "state", "candidate", "n", "expected", "dev_loss_mean", "dev_loss_ci_low", "dev_loss_ci_high", "chosen"],
                    report.Scopes.SelectMany(s => s.Candidates.Select(c => new object?[] { s.Method, s.Size, s.State, c.Label, c.N, c.Expected, c.Mean, c.CiLow, c.CiHigh, c.Chosen }))))
                : JsonResult(report);
        }));

        app.MapGet("/api/sweeps/{sweep}/cells/{key}", (string sweep, string key, HttpRequest r, CancellationToken ct) => Guard(async () =>
        {
            var cell = await api.CellAsync(await api.FindSweepAsync(sweep, ct), key, ct);
            return Csv(r) ? CsvResult($"outputs-{cell.Key[..12]}.csv", Table(["index", "id", "source", "output", "references", .. cell.SegmentMetrics],
                    cell.Outputs.Select(o => new object?[] { o.Index, o.Id, o.Source, o.Output, string.Join(" ||| ", o.References) }
                        .Concat(cell.SegmentMetrics.Select(m => (object?)o.Scores.GetValueOrDefault(m))).ToArray())))
                : JsonResult(cell);
        }));

        app.MapGet("/api/sweeps/{sweep}/events", async (string sweep, HttpContext context) =>
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
            var ct = linked.Token;
            SweepRecord record;
            try
            {
                record = await api.FindSweepAsync(sweep, ct);
            }
            catch (KeyNotFoundException ex)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await context.Response.WriteAsJsonAsync(new ApiError(ex.Message), Json, ct);
                return;
            }

            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-store";
            await ServerSentEvents.StreamAsync(context.Response, ct2 => api.ProgressEventAsync(record, ct2), TimeSpan.FromSeconds(1), ct);
        });
    }

    private static async Task<IResult> Guard(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (KeyNotFoundException ex)
        {
            return HttpResults.Json(new ApiError(ex.Message), Json, statusCode: StatusCodes.Status404NotFound);
        }
        catch (ArgumentException ex)
        {
            return HttpResults.Json(new ApiError(ex.Message), Json, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static IResult JsonResult<T>(T value) => HttpResults.Json(value, Json);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static bool Csv(HttpRequest request) => request.Query["format"] == "csv";

    private static IResult CsvResult(string name, string text) =>
        HttpResults.File(Encoding.UTF8.GetBytes(text), "text/csv; charset=utf-8", name);

    private static string Table(IReadOnlyList<string> header, IEnumerable<object?[]> rows)
    {
        var text = new StringBuilder();
        ResultsReport.CsvRow(text, header.ToArray());
        foreach (var row in rows)
        {
            ResultsReport.CsvRow(text, row.Select(Field).ToArray());
        }

        return text.ToString();
    }

    private static string? Field(object? value) => value switch
    {
        null => "",
        double d => ResultsReport.R(d),
        bool b => b ? "true" : "false",
        DateTimeOffset t => t.ToString("O", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };

    private static object? JsonCell(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.Number => e.GetDouble(),
        _ => e.ToString(),
    };

    // ---------------------------------------------------------------- the page (embedded files)

    private static IResult Asset(string file)
    {
        var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("wwwroot/" + file);
        if (stream is null)
        {
            return HttpResults.NotFound();
        }

        var type = Path.GetExtension(file) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".svg" => "image/svg+xml",
            _ => "application/octet-stream",
        };
        return HttpResults.Stream(stream, type);
    }
}
