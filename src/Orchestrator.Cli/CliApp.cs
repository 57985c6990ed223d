using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Cli.Commands;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Training;
using Orchestrator.Worker;
using Spectre.Console;

namespace Orchestrator.Cli;

/// <summary>The <c>orchestrator</c> command line.</summary>
public static class CliApp
{
    public const int ExitInvalidInput = 2;
    public const int ExitFailedCells = 3;

    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Orchestrator: low-data and generalization sweeps of parameter-efficient fine-tuning methods.");

        var dataDir = new Option<string>("--data-dir") { Description = "Folder for the embedded results database", DefaultValueFactory = _ => ".orchestrator" };
        var slots = new Option<int>("--slots") { Description = "Cells trained at once in this process", DefaultValueFactory = _ => 1 };
        var verbose = new Option<bool>("--verbose") { Description = "Show the host's log" };

        var demo = new Command("demo", "Run the demo sweep (sweeps/demo.yaml) in embedded mode and print its table.");
        var demoSpec = new Option<string?>("--spec") { Description = "Spec to run instead of sweeps/demo.yaml" };
        demo.Options.Add(demoSpec);
        demo.Options.Add(dataDir);
        demo.Options.Add(slots);
        demo.Options.Add(verbose);
        demo.SetAction((pr, ct) => RunSweepAsync(pr.GetValue(demoSpec) ?? DemoSpecPath(), pr.GetValue(dataDir)!, pr.GetValue(slots), pr.GetValue(verbose), ct));

        var run = new Command("run", "Run a sweep spec to completion in embedded mode (no external service) and print its table.");
        var runSpec = new Argument<string>("SPEC") { Description = "Sweep spec file (YAML)" };
        run.Arguments.Add(runSpec);
        run.Options.Add(dataDir);
        run.Options.Add(slots);
        run.Options.Add(verbose);
        run.SetAction((pr, ct) => RunSweepAsync(pr.GetValue(runSpec)!, pr.GetValue(dataDir)!, pr.GetValue(slots), pr.GetValue(verbose), ct));

        var validate = new Command("validate", "Check a sweep spec (and its data) without running anything; print its cells.");
        var validateSpec = new Argument<string>("SPEC") { Description = "Sweep spec file (YAML)" };
        validate.Arguments.Add(validateSpec);
        validate.SetAction(pr => Validate(pr.GetValue(validateSpec)!));

        root.Subcommands.Add(demo);
        root.Subcommands.Add(run);
        root.Subcommands.Add(validate);

        // Each area registers its commands from its own file under Commands/ (one line each).
        SweepCommands.Register(root, dataDir, slots, verbose);
        return await root.Parse(args).InvokeAsync();
    }

    private static int Validate(string specPath)
    {
        if (!TryPlan(specPath, out var plan))
        {
            return ExitInvalidInput;
        }

        Console.WriteLine($"{specPath}: valid. Sweep {plan.SweepId}: {plan.Cells.Count} cells");
        foreach (var cell in plan.Cells)
        {
            Console.WriteLine($"  {cell.Key[..12]}  {cell.Label}");
        }

        return 0;
    }

    internal static bool TryPlan(string specPath, out SweepPlan plan)
    {
        try
        {
            plan = SweepPlanner.PlanFile(specPath, OrchestratorVocabulary.Default);
            return true;
        }
        catch (SpecValidationException ex)
        {
            Console.Error.WriteLine(ex.Message);
            plan = null!;
            return false;
        }
    }

    private static async Task<int> RunSweepAsync(string specPath, string dataDir, int slots, bool verbose, CancellationToken ct)
    {
        if (!TryPlan(specPath, out var plan))
        {
            return ExitInvalidInput;
        }

        try
        {
            TorchRuntime.EnsureAvailable();
        }
        catch (TorchUnavailableException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 1;
        }

        var options = new EmbeddedOptions { DataDirectory = dataDir, WorkerSlots = slots };
        using var host = EmbeddedHost.Build(options, HostLogging(verbose));
        var started = DateTimeOffset.UtcNow;
        await host.StartAsync(ct);
        try
        {
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var submitted = await SweepSubmitter.SubmitAsync(grains, plan);
            Console.WriteLine($"Sweep {submitted.SweepId}: {submitted.Total} cells ({submitted.AlreadyDone} already done, {submitted.Queued} to train); results in {options.ResultsDatabasePath}");
            return await FinishAsync(host.Services, plan.Spec.Name, plan.Spec.Metrics, submitted.SweepId, started, ct);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    internal static Action<ILoggingBuilder>? HostLogging(bool verbose) =>
        verbose ? l => l.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information) : null;

    /// <summary>Waits for the sweep with a progress display, then prints its tables; exit 3 if cells failed.</summary>
    internal static async Task<int> FinishAsync(IServiceProvider services, string name, IReadOnlyList<string> metrics, string sweepId,
        DateTimeOffset started, CancellationToken ct)
    {
        var final = await WatchAsync(services.GetRequiredService<IGrainFactory>(), sweepId, ct);
        var cells = await services.GetRequiredService<IResultStore>().GetSweepCellsAsync(sweepId, ct);
        foreach (var metric in metrics)
        {
            PrintTable(name, SweepReport.Build(cells, metric), metric);
        }

        Console.WriteLine($"Finished in {(DateTimeOffset.UtcNow - started).TotalSeconds:F1} s: {final.Done} done ({final.Reused} reused), {final.Failed} failed.");
        return final.Failed > 0 ? ExitFailedCells : 0;
    }

    internal static async Task<SweepProgress> WatchAsync(IGrainFactory grains, string sweepId, CancellationToken ct)
    {
        var poll = TimeSpan.FromMilliseconds(500);
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            var last = -1;
            return await SweepSubmitter.WaitAsync(grains, sweepId, p =>
            {
                if (p.Done + p.Failed != last)
                {
                    last = p.Done + p.Failed;
                    Console.WriteLine($"  progress: {p.Done}/{p.Total} done, {p.Leased} running, {p.Pending} pending, {p.Failed} failed");
                }
            }, poll, ct);
        }

        SweepProgress? result = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("cells", maxValue: 1);
                result = await SweepSubmitter.WaitAsync(grains, sweepId, p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done + p.Failed;
                    task.Description = $"cells: {p.Done} done, {p.Leased} running, {p.Failed} failed";
                }, poll, ct);
            });
        return result!;
    }

    internal static void PrintTable(string name, IReadOnlyList<PointRow> rows, string metric)
    {
        var showSplit = rows.Select(r => r.Split).Distinct().Count() > 1;
        var table = new Table().Title($"{name}: {metric.ToUpperInvariant()} per point (mean over cells)");
        if (showSplit)
        {
            table.AddColumn("split");
        }

        table.AddColumn("method").AddColumn(new TableColumn("size").RightAligned()).AddColumn(new TableColumn("n").RightAligned())
            .AddColumn(new TableColumn($"mean {metric}").RightAligned()).AddColumn(new TableColumn("std").RightAligned());
        foreach (var row in rows)
        {
            var cells = new List<string>();
            if (showSplit)
            {
                cells.Add(row.Split);
            }

            var n = row.Complete ? $"{row.Summary.N}" : $"{row.Summary.N}/{row.Expected} (incomplete)";
            cells.AddRange([row.Method, row.Size.ToString(CultureInfo.InvariantCulture), n, Format(row.Summary.Mean), Format(row.Summary.StdDev)]);
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }

        AnsiConsole.Write(table);
    }

    private static string Format(double value) => double.IsNaN(value) ? "–" : value.ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>sweeps/demo.yaml from the working directory or a parent; else the copy embedded in this program.</summary>
    private static string DemoSpecPath()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "sweeps", "demo.yaml");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        var target = Path.Combine(Path.GetTempPath(), $"orchestrator-demo-{Environment.ProcessId}.yaml");
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("sweeps/demo.yaml")
            ?? throw new InvalidOperationException("the embedded demo spec is missing from this build");
        using var file = File.Create(target);
        stream.CopyTo(file);
        return target;
    }
}
