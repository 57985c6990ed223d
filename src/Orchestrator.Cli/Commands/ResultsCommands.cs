using System.CommandLine;
using Orchestrator.Abstractions;
using Orchestrator.Core.Aggregation;
using Orchestrator.Grains;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.Cli.Commands;

/// <summary>Results: <c>results</c> (tables and paired comparisons), <c>plot</c>, <c>export</c>, <c>rescore</c>, <c>reproduce</c> and <c>export-hf</c>.</summary>
internal static class ResultsCommands
{
    public static void Register(RootCommand root, Option<string> dataDir, Option<bool> verbose)
    {
        var shared = new SessionOptions(root, dataDir, verbose);
        var cluster = shared.Cluster;

        Command Make(string name, string description, params Symbol[] symbols) => shared.Add(name, description, symbols);

        Task<Session> Open(ParseResult pr, CancellationToken ct) => shared.OpenAsync(pr, train: false, slots: 1, ct);

        // ------------------------------------------------------------ results
        var resultsSweep = new Argument<string?>("SWEEP") { Description = "Sweep id or name (or --cells instead)", Arity = ArgumentArity.ZeroOrOne };
        var cellsFiles = new Option<string[]>("--cells")
        {
            Description = "Instead of a sweep: files written by `orchestrator export` (CSV or JSON Lines), combined; e.g. methods rerun in another " +
                          "sweep compared with --compare, paired on the same examples (their provenance's manifest_hash)",
            AllowMultipleArgumentsPerToken = true,
        };
        var metric = new Option<string?>("--metric") { Description = "Metric to show (default: every metric with values)" };
        var by = new Option<string>("--by")
        {
            Description = "Group by these cell attributes (comma-separated: dataset, split, method, size); coarser groups pool cells",
            DefaultValueFactory = _ => "dataset,split,method,size",
        };
        var format = new Option<string>("--format") { Description = "table, markdown, csv, json or latex (a booktabs tabular: needs \\usepackage{booktabs})", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong(ResultsReport.Formats);
        var compare = new Option<string[]>("--compare")
        {
            Description = "Paired difference A − B of two methods over cells sharing split, size, subsample and seed (e.g. --compare prefix finetune)",
            Arity = new ArgumentArity(2, 2),
            AllowMultipleArgumentsPerToken = true,
        };
        var compute = new Option<bool>("--compute")
        {
            Description = "Instead of the scores: what the sweep cost per method (cells, packed, reused training, summed and mean cell wall time) and cells per hour",
        };
        var selection = new Option<bool>("--selection")
        {
            Description = "Instead of the scores: the hyper-parameter selection per method (per size with per_size): each candidate's dev loss " +
                          "(mean ± 95% CI, n/expected selection cells), the choice, and its warnings (--format table or json)",
        };
        Make("results", "The sweep's table: per point, mean ± 95% Student-t CI with n/expected, sd, min, max; paired comparisons with --compare.",
                resultsSweep, cellsFiles, metric, by, format, compare, compute, selection)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                var keys = PointAggregation.ParseKeys(pr.GetValue(by)!);
                var pair = pr.GetValue(compare);
                var files = pr.GetValue(cellsFiles) ?? [];
                if ((files.Length > 0) == (pr.GetValue(resultsSweep) is not null))
                {
                    throw new ArgumentException("results needs a SWEEP or --cells FILE…, not both and not neither");
                }

                if (files.Length > 0)
                {
                    return await WriteCellsReportAsync(files, pr.GetValue(metric), keys, pair is { Length: 2 } ? (pair[0], pair[1]) : null,
                        pr.GetValue(format)!, pr.GetValue(compute), pr.GetValue(selection));
                }

                await using var session = await Open(pr, ct);
                var sweep = await SweepCommands.FindAsync(session, pr.GetValue(resultsSweep)!, ct);
                if (pr.GetValue(selection))
                {
                    return await WriteSelectionAsync(session, sweep, pr.GetValue(format)!, ct);
                }

                if (pr.GetValue(compute))
                {
                    Console.Out.Write(ComputeReport.Render(sweep.SweepId, await session.Store.GetSweepCellsAsync(sweep.SweepId, ct), pr.GetValue(format)!));
                    return 0;
                }

                var report = await BuildReportAsync(session.Grains, sweep, pr.GetValue(metric), keys, pair is { Length: 2 } ? (pair[0], pair[1]) : null);
                var chosen = pr.GetValue(format)!;
                if (chosen == "table")
                {
                    report.WriteTable();
                }
                else
                {
                    Console.Out.Write(report.Render(chosen));
                    Console.Out.Flush();
                }

                // On stderr: the table's formats stay machine-readable.
                CliApp.WriteWarnings(ResearchWarnings.ForResults(await session.Store.GetSweepCellsAsync(sweep.SweepId, ct), pr.GetValue(metric)));
                return 0;
            }));

        // ------------------------------------------------------------ plot
        var plotSweep = new Argument<string?>("SWEEP") { Description = "Sweep id or name (or --cells instead)", Arity = ArgumentArity.ZeroOrOne };
        var plotCells = new Option<string[]>("--cells")
        {
            Description = "Instead of a sweep: files written by `orchestrator export`, combined (as results --cells)",
            AllowMultipleArgumentsPerToken = true,
        };
        var plotMetric = new Option<string?>("--metric") { Description = "Metric on the y axis (default: the spec's first metric)" };
        var plotOut = new Option<string>("--out") { Description = "Output file: .png or .svg", Required = true };
        var width = new Option<int>("--width") { Description = "Image width in pixels", DefaultValueFactory = _ => 1000 };
        var height = new Option<int>("--height") { Description = "Image height in pixels", DefaultValueFactory = _ => 650 };
        var xScale = new Option<string>("--x-scale")
        {
            Description = "Size axis: linear, or log (sizes such as 50/100/200/500 evenly spread)",
            DefaultValueFactory = _ => ResultsPlot.LinearScale,
        };
        xScale.AcceptOnlyFromAmong(ResultsPlot.LinearScale, ResultsPlot.LogScale);
        Make("plot", "Metric against training-set size: one line per method with its shaded 95% CI, one panel per dataset/split (PNG or SVG).",
                plotSweep, plotCells, plotMetric, plotOut, width, height, xScale)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                var files = pr.GetValue(plotCells) ?? [];
                if ((files.Length > 0) == (pr.GetValue(plotSweep) is not null))
                {
                    throw new ArgumentException("plot needs a SWEEP or --cells FILE…, not both and not neither");
                }

                string title, chosen;
                IReadOnlyList<PointSummary> points;
                if (files.Length > 0)
                {
                    var sums = ExportedCells.Points(ExportedCells.Read(files));
                    title = string.Join(" + ", files.Select(Path.GetFileName));
                    chosen = pr.GetValue(plotMetric) ?? sums.Select(p => p.Metric).Order(StringComparer.Ordinal).FirstOrDefault() ?? "bleu";
                    points = PointAggregation.Summarize(sums, PointKeys.All, chosen);
                }
                else
                {
                    await using var session = await Open(pr, ct);
                    var sweep = await SweepCommands.FindAsync(session, pr.GetValue(plotSweep)!, ct);
                    var results = await session.Grains.GetGrain<IResultsGrain>(sweep.SweepId).GetAsync();
                    title = sweep.Name;
                    chosen = pr.GetValue(plotMetric) ?? PrimaryMetric(sweep, results);
                    points = PointAggregation.Summarize(results.Points.Select(p => p.ToSums()), PointKeys.All, chosen);
                }

                if (points.Count == 0)
                {
                    throw new ArgumentException($"{(files.Length > 0 ? "the cells of " : "sweep ")}{title} has no metric '{chosen}'");
                }

                var panels = ResultsPlot.Build(points, chosen, points.Select(p => p.Dataset).Distinct().Count() > 1, pr.GetValue(xScale)!, title);
                var path = pr.GetValue(plotOut)!;
                ResultsPlot.Save(panels, path, pr.GetValue(width), pr.GetValue(height));
                Console.WriteLine($"wrote {path} ({panels.Count} panel(s), {chosen})");
                return 0;
            }));

        // ------------------------------------------------------------ export
        var exportSweep = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        var exportFormat = new Option<string>("--format") { Description = "csv or jsonl", DefaultValueFactory = _ => "csv" };
        exportFormat.AcceptOnlyFromAmong("csv", "jsonl");
        var exportOut = new Option<string>("--out") { Description = "Output file", Required = true };
        var withOutputs = new Option<bool>("--with-outputs") { Description = "Also write each cell's decoded outputs" };
        var full = new Option<bool>("--full")
        {
            Description = "JSON Lines with everything `orchestrator import` needs to store the results in another database: outputs, " +
                          "each cell's definition and training curve",
        };
        Make("export", "Every cell of the sweep with its status, provenance and scores, as CSV or JSON Lines.",
                exportSweep, exportFormat, exportOut, withOutputs, full)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                if (pr.GetValue(full) && pr.GetValue(exportFormat) != "jsonl")
                {
                    throw new ArgumentException("--full writes JSON Lines: add --format jsonl");
                }

                await using var session = await Open(pr, ct);
                var sweep = await SweepCommands.FindAsync(session, pr.GetValue(exportSweep)!, ct);
                var cells = await session.Store.GetSweepCellsAsync(sweep.SweepId, ct);
                if (pr.GetValue(full))
                {
                    var withCurves = new List<(Results.CellDescriptor Cell, Results.CellResultRecord? Result)>();
                    foreach (var (cell, result) in cells)
                    {
                        withCurves.Add((cell, result is null ? null : result with { CurveJson = await session.Store.GetCurveAsync(cell.CellKey, ct) }));
                    }

                    cells = withCurves;
                }

                var path = pr.GetValue(exportOut)!;
                var trainings = (await session.Store.GetTrainingRunsAsync(cells.Select(c => c.Cell.CellKey), ct))
                    .GroupBy(r => r.CellKey).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
                var count = ResultsExport.Write(cells, pr.GetValue(exportFormat)!, path, pr.GetValue(withOutputs) || pr.GetValue(full), trainings, pr.GetValue(full));
                Console.WriteLine($"wrote {count} cells to {path}");
                return 0;
            }));

        // ------------------------------------------------------------ import
        var importFile = new Argument<string>("FILE") { Description = "A file written by `orchestrator export SWEEP --format jsonl --full`" };
        Make("import", "Store the succeeded cells of an exported file (export --format jsonl --full) in this database, so that a sweep " +
                       "submitted here reuses them instead of training them again (results move between machines and databases).",
                importFile)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                var path = pr.GetValue(importFile)!;
                var cells = CellImport.Read(path);
                await using var session = await shared.OpenAsync(pr, train: false, slots: 1, ct, create: true); // a new machine's first command
                var outcome = await CellImport.StoreAsync(session.Store, cells, ct);
                Console.WriteLine($"{path}: {outcome.Stored} cell(s) stored, {outcome.AlreadyStored} already had a stored success (kept), " +
                                  $"{outcome.Skipped} not succeeded (skipped: a sweep trains them)");
                Console.WriteLine("A sweep whose cells these are now finds them done (`submit`/`run` count them as already done).");
                return 0;
            }));

        // ------------------------------------------------------------ rescore
        var rescoreSweep = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        var metrics = new Option<string[]>("--metrics")
        {
            Description = "Metrics to recompute (default: the spec's metrics); space- or comma-separated",
            AllowMultipleArgumentsPerToken = true,
        };
        Make("rescore", "Recompute metrics from the stored decoded outputs (no retraining); attempts and provenance are unchanged.",
                rescoreSweep, metrics)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                await using var session = await Open(pr, ct);
                var sweep = await SweepCommands.FindAsync(session, pr.GetValue(rescoreSweep)!, ct);
                var asked = (pr.GetValue(metrics) ?? []).SelectMany(m => m.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
                var summary = await Rescorer.RescoreAsync(session.Store, sweep.SweepId, asked.Count > 0 ? asked : sweep.Metrics, null, ct);
                await session.Grains.GetGrain<IResultsGrain>(sweep.SweepId).InvalidateAsync();
                Console.WriteLine($"{sweep.SweepId}: rescored {summary.Rescored} cell(s), skipped {summary.Skipped} without a current successful result");
                if (summary.Problems.Count > 0)
                {
                    Console.Error.WriteLine($"error: {summary.Problems.Count} cell(s) could not be rescored; first: {summary.Problems[0]}");
                    return 1;
                }

                return 0;
            }));

        // ------------------------------------------------------------ reproduce
        var reproduceSweep = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        var reproduceCell = new Argument<string>("CELL") { Description = "The cell's key, or a unique prefix of it (at least 6 characters; `export` lists keys)" };
        var reproduceThreads = new Option<int?>("--threads")
        {
            Description = "Torch threads for the rerun (default: the stored result's own, read from its device, e.g. 'cpu, 1 thread')",
        };
        reproduceThreads.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is <= 0) r.AddError("--threads must be a positive integer");
        });
        Make("reproduce", "Rerun one stored cell from its definition, alone, on this machine, and compare its metrics (each one the stored result holds, rescored ones included), outputs and training numbers with the stored result (writes nothing).",
                reproduceSweep, reproduceCell, reproduceThreads)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                await using var session = await Open(pr, ct);
                var sweep = await SweepCommands.FindAsync(session, pr.GetValue(reproduceSweep)!, ct);
                var r = await CellReproducer.ReproduceAsync(session.Store, sweep.SweepId, pr.GetValue(reproduceCell)!, sweep.Metrics, ct,
                    new EmbeddedOptions { DataDirectory = Core.Paths.OrchestratorHome.Locate(pr.GetValue(dataDir)).Path }.ArtifactDirectory, pr.GetValue(reproduceThreads));
                Console.WriteLine($"{r.Label} ({r.CellKey[..12]}), rerun in {r.Seconds:F1} s on {r.Threads} thread{(r.Threads == 1 ? "" : "s")} " +
                                  $"(stored on: {r.StoredDevice}):");
                foreach (var (name, stored, rerun) in r.Metrics)
                {
                    Console.WriteLine(FormattableString.Invariant($"  {name,-16} stored {stored,12:R}  rerun {rerun,12:R}  {(stored.Equals(rerun) ? "equal" : "DIFFERENT")}"));
                }

                if (r.NotCompared.Count > 0)
                {
                    Console.WriteLine($"  not compared (no metric produces them): {string.Join(", ", r.NotCompared)}");
                }

                Console.WriteLine($"  outputs: {r.OutputsCompared - r.OutputsDiffering}/{r.OutputsCompared} identical");
                if (r.Exact)
                {
                    Console.WriteLine("reproduced exactly");
                    return 0;
                }

                Console.WriteLine("differences:");
                foreach (var line in r.Differences())
                {
                    Console.WriteLine("  " + line);
                }

                Console.Error.WriteLine($"error: not reproduced exactly; {r.Explanation}");
                return 1;
            }));

        // ------------------------------------------------------------ export-hf
        var exportHfSweep = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        var exportHfCell = new Argument<string>("CELL") { Description = "The cell's key, or a unique prefix of it (at least 6 characters; `export` lists keys)" };
        var exportHfOut = new Option<string>("--out") { Description = "The folder to write (new or empty; nothing is overwritten)", Required = true };
        Make("export-hf", "Write one stored cell's trained method in Hugging Face format: a PEFT adapter folder (adapter_config.json, " +
                          "adapter_model.safetensors), or a full checkpoint for the methods PEFT has no type for. Needs the cell's " +
                          "trained method in the artifact store (execution.artifacts: all).",
                exportHfSweep, exportHfCell, exportHfOut)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                await using var session = await Open(pr, ct);
                var sweep = await SweepCommands.FindAsync(session, pr.GetValue(exportHfSweep)!, ct);
                CellExport e;
                try
                {
                    e = await CellExporter.ExportAsync(session.Store, sweep.SweepId, pr.GetValue(exportHfCell)!, pr.GetValue(exportHfOut)!,
                        new EmbeddedOptions { DataDirectory = Core.Paths.OrchestratorHome.Locate(pr.GetValue(dataDir)).Path }.ArtifactDirectory, ct);
                }
                catch (Exception ex) when (ex is NotSupportedException or FileNotFoundException or InvalidDataException)
                {
                    Console.Error.WriteLine($"error: cannot export: {ex.Message}");
                    return CliApp.ExitInvalidInput;
                }

                Console.WriteLine($"{e.Label} ({e.CellKey[..12]}): {e.Method} written to {e.Directory} as " +
                                  (e.PeftType is { } type ? $"PEFT type {type}" : "a full Hugging Face checkpoint (no PEFT type)"));
                foreach (var file in e.Files)
                {
                    Console.WriteLine("  " + file);
                }

                return 0;
            }));
    }

    /// <summary><c>results --cells FILE…</c>: the table, comparison or compute report of exported cells (<see cref="ExportedCells"/>).</summary>
    private static async Task<int> WriteCellsReportAsync(string[] files, string? metric, PointKeys keys, (string, string)? pair, string format,
        bool compute, bool selection)
    {
        if (selection)
        {
            throw new ArgumentException("--selection needs the sweep's stored choices, which an export does not hold: use results SWEEP --selection");
        }

        var cells = ExportedCells.Read(files);
        if (compute)
        {
            Console.Out.Write(ComputeReport.Render(string.Join(" + ", files.Select(Path.GetFileName)), cells.Select(c => (c.Cell, c.Result)).ToList(), format));
            return 0;
        }

        var report = await ResultsReport.FromCellsAsync(files, cells, metric, keys, pair);
        if (format == "table")
        {
            report.WriteTable();
        }
        else
        {
            Console.Out.Write(report.Render(format));
            Console.Out.Flush();
        }

        CliApp.WriteWarnings(ResearchWarnings.ForResults(cells.Select(c => (c.Cell, c.Result)).ToList(), metric));
        return 0;
    }

    /// <summary><c>results SWEEP --selection</c>: the selection table (or JSON) on stdout, its warnings on stderr.</summary>
    private static async Task<int> WriteSelectionAsync(Session session, SweepRecord sweep, string format, CancellationToken ct)
    {
        if (format is not ("table" or "json"))
        {
            throw new ArgumentException($"--selection prints a table or json, not {format}");
        }

        var report = await SelectionReports.ReportAsync(session.Store, sweep, ct)
            ?? throw new ArgumentException($"sweep {sweep.SweepId} has no selection: block in its spec");
        Console.Out.Write(format == "json"
            ? System.Text.Json.JsonSerializer.Serialize(report, SelectionJson) + Environment.NewLine
            : report.ToText());
        Console.Out.Flush();
        CliApp.WriteWarnings(report.Warnings);
        return 0;
    }

    private static readonly System.Text.Json.JsonSerializerOptions SelectionJson = new() { WriteIndented = true };

    /// <summary>The report for <c>results</c> and the tables of <c>demo</c>/<c>run</c> (<see cref="ResultsReport.BuildAsync"/>).</summary>
    internal static Task<ResultsReport> BuildReportAsync(IGrainFactory grains, SweepRecord sweep, string? metric, PointKeys by,
        (string A, string B)? compare) => ResultsReport.BuildAsync(grains, sweep, metric, by, compare);

    private static string PrimaryMetric(SweepRecord sweep, SweepResults results) => ResultsReport.PrimaryMetric(sweep, results);
}
