using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Cli.Commands;
using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Paths;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Training;
using Orchestrator.Training.Pretraining;
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

        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Data directory (embedded results database, artifacts, cached bases, datasets). Default: $ORCHESTRATOR_HOME, " +
                          "else the nearest .orchestrator/ at or above the working directory, else ~/.local/share/orchestrator",
        };
        var slots = new Option<int>("--slots") { Description = "Cells trained at once in this process, each on one torch thread (default: one per core)", DefaultValueFactory = _ => 0 };
        var pack = new Option<int>("--pack")
        {
            Description = "Packed training of prefix/prompt/ptuning-v2/lora/ia3 cells on one shared base: 0 = choose K by calibration, 1 = off, N = up to N cells at once",
            DefaultValueFactory = _ => 0,
        };
        pack.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 0 or > 256) r.AddError("--pack must be 0 (calibrate), 1 (off) or a pack size up to 256");
        });

        // The demo packs its prefix and LoRA cells four at a time, so that it shows packing (on a 2-core CPU the calibration
        // finds little gain for the tiny shape and would pick K = 1; see docs/benchmarks.md).
        var demoPack = new Option<int>("--pack")
        {
            Description = pack.Description + " (demo default: 4)",
            DefaultValueFactory = _ => 4,
        };
        foreach (var validator in pack.Validators) demoPack.Validators.Add(validator);
        var verbose = new Option<bool>("--verbose") { Description = "Show the host's log" };
        var dashboardPort = new Option<int?>("--dashboard-port")
        {
            Description = "Serve the Orleans Dashboard on this loopback port while the sweep runs (http://127.0.0.1:PORT/)",
        };

        var maxCells = MaxCellsOption();
        var uiPort = Commands.UiCommand.Port();
        var uiBind = Commands.UiCommand.Bind();
        var uiTokenFile = Commands.UiCommand.TokenFile();
        var ui = new UiSettings(uiPort, uiBind, uiTokenFile);

        var demo = new Command("demo", "Run the demo sweep (sweeps/demo.yaml) in embedded mode and print its table.");
        var demoSpec = new Option<string?>("--spec") { Description = "Spec to run instead of sweeps/demo.yaml" };
        demo.Options.Add(demoSpec);
        demo.Options.Add(dataDir);
        demo.Options.Add(slots);
        demo.Options.Add(demoPack);
        demo.Options.Add(verbose);
        demo.Options.Add(dashboardPort);
        demo.Options.Add(maxCells);
        ui.AddTo(demo);
        demo.SetAction((pr, ct) => RunSweepAsync(pr.GetValue(demoSpec) ?? DemoSpecPath(), pr.GetValue(dataDir)!, pr.GetValue(slots), pr.GetValue(demoPack),
            pr.GetValue(verbose), pr.GetValue(dashboardPort), pr.GetValue(maxCells), ct, ui.Read(pr), readTable: true));

        var run = new Command("run", "Run a sweep spec to completion in embedded mode (no external service) and print its table.");
        var runSpec = new Argument<string>("SPEC") { Description = "Sweep spec file (YAML)" };
        run.Arguments.Add(runSpec);
        run.Options.Add(dataDir);
        run.Options.Add(slots);
        run.Options.Add(pack);
        run.Options.Add(verbose);
        run.Options.Add(dashboardPort);
        run.Options.Add(maxCells);
        ui.AddTo(run);
        run.SetAction((pr, ct) => RunSweepAsync(pr.GetValue(runSpec)!, pr.GetValue(dataDir)!, pr.GetValue(slots), pr.GetValue(pack),
            pr.GetValue(verbose), pr.GetValue(dashboardPort), pr.GetValue(maxCells), ct, ui.Read(pr)));

        var validate = new Command("validate", "Check a sweep spec (and its data) without running anything; print its cells.");
        var validateSpec = new Argument<string>("SPEC") { Description = "Sweep spec file (YAML)" };
        validate.Arguments.Add(validateSpec);
        validate.Options.Add(maxCells);
        validate.SetAction(pr => Validate(pr.GetValue(validateSpec)!, pr.GetValue(maxCells)));

        root.Subcommands.Add(demo);
        root.Subcommands.Add(run);
        root.Subcommands.Add(validate);

        // Each area registers its commands from its own file under Commands/ (one line each).
        Commands.MethodsCommand.Register(root);
        Commands.GenerateCommand.Register(root);
        Commands.DataCommands.Register(root);
        Commands.ScoreCommand.Register(root);
        SweepCommands.Register(root, dataDir, slots, verbose, maxCells);
        Commands.ArtifactCommands.Register(root, dataDir);
        Commands.PretrainCommand.Register(root, dataDir);
        ResultsCommands.Register(root, dataDir, verbose);
        CurveCommands.Register(root, dataDir, verbose);
        Commands.UiCommand.Register(root, dataDir, verbose);
        return await root.Parse(args).InvokeAsync();
    }

    /// <summary><c>--max-cells N</c>: the most cells a spec may expand to (validate, run, demo, submit, extend).</summary>
    private static Option<long> MaxCellsOption()
    {
        var option = new Option<long>("--max-cells")
        {
            Description = $"Refuse a spec that expands to more cells than this (default {SpecLimits.DefaultMaxCells:N0})",
            DefaultValueFactory = _ => SpecLimits.DefaultMaxCells,
        };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long>() < 1) r.AddError("--max-cells must be at least 1");
        });
        return option;
    }

    private static int Validate(string specPath, long maxCells)
    {
        if (!TryPlan(specPath, maxCells, out var plan))
        {
            return ExitInvalidInput;
        }

        Console.WriteLine($"{specPath}: valid. Sweep {plan.SweepId}: {plan.Cells.Count} cells");
        foreach (var cell in plan.Cells)
        {
            Console.WriteLine($"  {cell.Key[..12]}  {cell.Label}");
        }

        if (plan.Selection.Count > 0)
        {
            Console.WriteLine($"Selection: {plan.Selection.Count} cells (chosen by {plan.Spec.Methods.First(m => m.Selection is not null).Selection!.By}; " +
                "the grid's cells above show the spec's own settings until the choice is made)");
            foreach (var s in plan.Selection)
            {
                Console.WriteLine($"  {s.Cell.Key[..12]}  {s.Cell.Label}  {SelectionSpec.Label(s.Candidate)}");
            }
        }

        Console.WriteLine(ResearchWarnings.Estimate(plan, Environment.ProcessorCount));
        WriteWarnings(ResearchWarnings.ForPlan(plan));
        return 0;
    }

    /// <summary>Writes each warning as one "warning: …" line on stderr (after any table, so tables stay machine-readable).</summary>
    internal static void WriteWarnings(IReadOnlyList<string> warnings)
    {
        foreach (var warning in warnings)
        {
            Console.Error.WriteLine("warning: " + warning);
        }
    }

    internal static bool TryPlan(string specPath, long maxCells, out SweepPlan plan)
    {
        try
        {
            plan = SweepPlanner.PlanFile(specPath, OrchestratorVocabulary.Default, maxCells);
            return true;
        }
        catch (SpecValidationException ex)
        {
            Console.Error.WriteLine(ex.Message);
            plan = null!;
            return false;
        }
    }

    /// <summary>The results page options of <c>run</c> and <c>demo</c>.</summary>
    private sealed record UiSettings(Option<int?> Port, Option<string> Bind, Option<string?> TokenFile)
    {
        public void AddTo(Command command)
        {
            command.Options.Add(Port);
            command.Options.Add(Bind);
            command.Options.Add(TokenFile);
        }

        public (int? Port, string Bind, string? TokenFile) Read(ParseResult pr) => (pr.GetValue(Port), pr.GetValue(Bind)!, pr.GetValue(TokenFile));
    }

    private static async Task<int> RunSweepAsync(string specPath, string? dataDir, int slots, int pack, bool verbose, int? dashboardPort, long maxCells,
        CancellationToken ct, (int? Port, string Bind, string? TokenFile) ui = default, bool readTable = false)
    {
        if (!TryPlan(specPath, maxCells, out var plan))
        {
            return ExitInvalidInput;
        }

        WriteWarnings(ResearchWarnings.ForPlan(plan));
        try
        {
            TorchRuntime.EnsureAvailable();
        }
        catch (TorchUnavailableException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 1;
        }

        try
        {
            if (ui.Port is not null)
            {
                new Orchestrator.Web.WebUiOptions { Port = ui.Port.Value, BindAddress = ui.Bind ?? "127.0.0.1", TokenFile = ui.TokenFile }.ResolveToken();
            }
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return ExitInvalidInput;
        }

        var home = OrchestratorHome.Locate(dataDir);
        BaseModelCache.DefaultDataDirectory = home.Path;
        try
        {
            SeedShippedBases(plan, specPath, home.Path);
        }
        catch (InvalidDataException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return ExitInvalidInput;
        }

        var options = new EmbeddedOptions { DataDirectory = home.Path, WorkerSlots = slots, PackSize = pack, DashboardPort = dashboardPort };
        IHost built;
        try
        {
            built = EmbeddedHost.Build(options, HostLogging(verbose));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return ExitInvalidInput;
        }

        using var host = built;
        var started = DateTimeOffset.UtcNow;
        await host.StartAsync(ct);
        if (options.DashboardOptions?.LocalUrl is { } dashboard)
        {
            Console.WriteLine($"Orleans Dashboard: {dashboard} (while the sweep runs)");
        }

        Orchestrator.Web.WebUi? page = null;
        try
        {
            page = await Commands.UiCommand.StartAsync(ui.Port, ui.Bind ?? "127.0.0.1", ui.TokenFile, host.Services, ct);
            var submission = await SubmitAsync(host.Services, plan, maxCells, ct);
            var submitted = submission.Result;
            var counts = plan.Selection.Count > 0
                ? $"{submitted.AlreadyDone} already done, {submitted.Queued} queued now; each chosen grid joins when its selection has finished"
                : $"{submitted.AlreadyDone} already done, {submitted.Queued} to train";
            Console.WriteLine($"Sweep {submitted.SweepId}: {submitted.Total} cells ({counts}); results in {options.ResultsDatabasePath} (data directory: {home.Source})");
            if (submitted.Queued > 0 && plan.Selection.Count == 0)
            {
                Console.WriteLine(ResearchWarnings.Estimate(plan, Environment.ProcessorCount, submitted.Queued));
            }

            var exit = await FinishAsync(host.Services, plan.Spec.Name, plan.Spec.Metrics, submitted.SweepId, started, ct,
                submission.DoneBefore, readTable ? DemoReading.Context(plan.Spec) : null);
            await Commands.UiCommand.ServeUntilCancelledAsync(page, ct);
            page = null;
            return exit;
        }
        catch (InvalidOperationException ex) when (page is null && ui.Port is not null)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 1;
        }
        finally
        {
            if (page is not null)
            {
                await page.DisposeAsync();
            }

            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Submits a planned sweep. With <c>selection:</c> it goes the cluster's way in every mode: the selection cells (with the grid
    /// of the methods that select nothing) are queued together with every candidate's grid for the sweep grain, which makes each
    /// choice from the stored selection cells once they have finished and queues only the chosen grid
    /// (<see cref="SweepSubmitter.SubmitSelectingAsync"/>). <see cref="Submission.DoneBefore"/>: the cells (of any candidate) that
    /// had succeeded before, so that the caller can say how many it reused once the choice is known.
    /// </summary>
    internal static async Task<Submission> SubmitAsync(IServiceProvider services, SweepPlan plan, long maxCells, CancellationToken ct)
    {
        var grains = services.GetRequiredService<IGrainFactory>();
        if (plan.Selection.Count == 0)
        {
            return new Submission(await SweepSubmitter.SubmitAsync(grains, plan), null);
        }

        var store = services.GetRequiredService<IResultStore>();
        var grids = SelectionRound.CandidateGrids(plan, maxCells);
        var keys = SelectionRound.FirstPhase(plan).Concat(grids.SelectMany(g => g.Cells)).Select(c => c.Key);
        var doneBefore = (await store.GetSucceededKeysAsync(keys.Distinct(StringComparer.Ordinal).ToList(), ct)).ToHashSet(StringComparer.Ordinal);
        var submitted = await SweepSubmitter.SubmitSelectingAsync(grains, plan, grids);
        Console.WriteLine($"Selection first: {plan.Selection.Count} selection cells and the grid of the methods that select nothing; each " +
                          "selecting method's grid is queued at its chosen values once its selection cells have finished");
        return new Submission(submitted, doneBefore);
    }

    /// <summary>A submission and, for a sweep with <c>selection:</c>, the keys of its possible cells that had succeeded before it.</summary>
    internal sealed record Submission(SubmitResult Result, IReadOnlySet<string>? DoneBefore);

    internal static Action<ILoggingBuilder>? HostLogging(bool verbose) =>
        verbose ? l => l.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information) : null;

    /// <summary>Waits for the sweep with a progress display, then prints its tables (mean ± 95% CI, n/expected); exit 3 if cells failed.</summary>
    /// <param name="doneBefore">With <c>selection:</c>, the cells that had succeeded before this run (<see cref="Submission.DoneBefore"/>):
    /// the queue's count of reused cells would include the selection cells this run trained before its grid joined.</param>
    internal static async Task<int> FinishAsync(IServiceProvider services, string name, IReadOnlyList<string> metrics, string sweepId,
        DateTimeOffset started, CancellationToken ct, IReadOnlySet<string>? doneBefore = null, ReadingContext? reading = null)
    {
        var grains = services.GetRequiredService<IGrainFactory>();
        var store = services.GetRequiredService<IResultStore>();
        var final = await WatchAsync(grains, store, sweepId, ct);
        var sweep = await store.FindSweepAsync(sweepId, ct) ?? throw new InvalidOperationException($"sweep {sweepId} is not in the database");
        var present = (await grains.GetGrain<IResultsGrain>(sweepId).GetAsync()).Points.Select(p => p.Metric).ToHashSet(StringComparer.Ordinal);
        foreach (var metric in metrics.Where(present.Contains).DefaultIfEmpty(metrics.FirstOrDefault()).OfType<string>())
        {
            var report = await ResultsCommands.BuildReportAsync(grains, sweep, present.Contains(metric) ? metric : null, PointKeys.All, null);
            report.WriteTable();
        }

        if (reading is not null && metrics.FirstOrDefault(present.Contains) is { } primary)
        {
            Console.WriteLine();
            Console.WriteLine(await DemoReading.ReadAsync(grains, sweepId, primary, reading));
            Console.WriteLine();
        }

        var rows = await store.GetSweepCellsAsync(sweepId, ct);
        if (SelectionReports.Report(sweep, rows, await store.GetSelectionsAsync(sweepId, ct),
                await Grains.SweepSelection.AttemptLimitsAsync(store, sweepId, ct)) is { } selection)
        {
            Console.Write(selection.ToText());
            WriteWarnings(selection.Warnings);
        }

        if (PackingSummary(rows) is { } packing)
        {
            Console.WriteLine(packing);
        }

        WriteWarnings(ResearchWarnings.ForResults(rows, metrics.SelectMany(MetricSuite.OutputsOf).FirstOrDefault(present.Contains)));

        Console.WriteLine($"Finished in {(DateTimeOffset.UtcNow - started).TotalSeconds:F1} s: {final.Done} done ({(doneBefore is null ? final.Reused : rows.Count(r => doneBefore.Contains(r.Cell.CellKey)))} reused), {final.Failed} failed" +
                          (final.Blocked > 0 ? $", {final.Blocked} blocked by a failed dependency (see status; rerun-failed runs them)." : "."));
        return final.Failed + final.Blocked > 0 ? ExitFailedCells : 0;
    }

    /// <summary>Which cells were trained in packs (from their provenance), per method; null when none were.</summary>
    internal static string? PackingSummary(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows)
    {
        var perMethod = new SortedDictionary<string, (int Cells, int Packed, int Largest)>(StringComparer.Ordinal);
        foreach (var (cell, result) in rows)
        {
            if (result is not { Status: CellStatus.Succeeded })
            {
                continue;
            }

            var (cells, packed, largest) = perMethod.GetValueOrDefault(cell.Method);
            var packing = PackingProvenance.Read(result.ProvenanceJson);
            if (packing.WithOthers)
            {
                packed++;
                largest = Math.Max(largest, packing.LargestPack);
            }

            perMethod[cell.Method] = (cells + 1, packed, largest);
        }

        if (perMethod.Values.All(v => v.Packed == 0))
        {
            return null;
        }

        return "Packed training (one shared frozen base, per-trial parameters and optimizer): " + string.Join("; ", perMethod.Select(kv =>
            kv.Value.Packed == 0
                ? $"{kv.Key} {kv.Value.Cells} cell(s) alone"
                : $"{kv.Key} {kv.Value.Packed}/{kv.Value.Cells} cells in packs of up to {kv.Value.Largest}")) + ".";
    }

    /// <summary>Follows the sweep until complete: live progress per method (done, running, failed, ETA) with Spectre.Console.</summary>
    internal static Task<SweepProgress> WatchAsync(IGrainFactory grains, IResultStore store, string sweepId, CancellationToken ct) =>
        ProgressDisplay.WatchAsync(grains, store, sweepId, TimeSpan.FromMilliseconds(500), ct);

    /// <summary>
    /// Bases the spec pretrains that are kept beside it (<c>SPEC_DIR/bases/HASH/</c>, as the demo's is) go into the data
    /// directory's cache, checked against their recorded content hash, so the run does not pretrain them again.
    /// </summary>
    internal static void SeedShippedBases(SweepPlan plan, string specPath, string dataDirectory)
    {
        var shippedRoot = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(specPath))!, "bases");
        if (!Directory.Exists(shippedRoot))
        {
            return;
        }

        foreach (var identity in plan.Cells.Select(c => c.Model).Prepend(plan.Model).DistinctBy(m => m.ContentHash))
        {
            if (PretrainRecipe.TryFromIdentity(identity, out var recipe) &&
                Directory.Exists(Path.Combine(shippedRoot, recipe.Hash)) &&
                !PretrainedBases.IsComplete(PretrainedBases.DirectoryFor(dataDirectory, recipe.Hash)))
            {
                PretrainedBases.Ensure(recipe, dataDirectory, Console.WriteLine, shippedRoot: shippedRoot);
            }
        }
    }

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
