using System.Globalization;
using System.Text;
using System.Text.Json;
using Orchestrator.Cli;
using Orchestrator.Cli.Commands;
using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Cells;
using Orchestrator.Data;
using Orchestrator.Evaluation;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// <c>results</c>, <c>plot</c>, <c>export</c> and <c>rescore</c> through the real command line, in embedded mode, on a sweep
/// whose results are written straight into the SQLite file (no training: fast). Two methods × two sizes × three replicas;
/// one prefix cell at size 20 has no result, so that point is incomplete.
/// </summary>
public sealed class ResultsCommandsTests : IDisposable
{
    private const string Spec = """
        name: res
        dataset:
          kind: synthetic-e2e
          options: {mrs: 80, seed: 5}
          eval_limit: 4
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10, 20]
          subsamples: 3
          seeds: [0]
        training:
          max_steps: 2
        metrics: [bleu]
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-results-");
    private readonly SweepPlan _plan;
    private readonly List<CellDescriptor> _cells = [];

    public ResultsCommandsTests()
    {
        _plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        foreach (var cell in _plan.Cells)
        {
            var json = cell.ToCanonicalJson();
            _cells.Add(new CellDescriptor(cell.Key, cell.Dataset.Kind, cell.Split, cell.Method, cell.Size, cell.Subsample, cell.Seed, json));
            // A second method sharing (split, size, subsample, seed): same data, a different key.
            _cells.Add(new CellDescriptor(cell.Key + "-prefix", cell.Dataset.Kind, cell.Split, "prefix", cell.Size, cell.Subsample, cell.Seed, json));
        }
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private string DatabasePath => new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath;

    /// <summary>BLEU = 10·size/10 + subsample for finetune, 2 more for prefix; the prefix cell (20, subsample 2) has no result.</summary>
    private static double Bleu(CellDescriptor c) => c.Size + c.Subsample + (c.Method == "prefix" ? 2 : 0);

    private async Task SeedAsync(Func<CellDescriptor, IReadOnlyList<string>>? outputs = null)
    {
        await using var store = ResultStores.Sqlite(DatabasePath);
        await store.EnsureSchemaAsync();
        await store.SaveSweepAsync(new SweepRecord(_plan.SweepId, "res", _plan.SpecYaml, _plan.SpecHash, DateTimeOffset.UtcNow, _cells.Count)
        {
            Metrics = ["bleu"],
        }, _cells);
        foreach (var c in _cells.Where(c => !(c.Method == "prefix" && c.Size == 20 && c.Subsample == 2)))
        {
            await store.UpsertResultAsync(new CellResultRecord(c.CellKey, 1, CellStatus.Succeeded, new Dictionary<string, double> { ["bleu"] = Bleu(c) },
                null, "w1", "cpu", 1.5, 1000, $$"""{"seed":{{c.Seed}},"method":"{{c.Method}}","dataset_hash":"h","manifest_hash":"m{{c.Size}}-{{c.Subsample}}"}""",
                outputs?.Invoke(c) ?? ["a", "b"], DateTimeOffset.UtcNow));
        }
    }

    private Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) =>
        CliCapture.RunAsync([.. args, "--data-dir", _dir.FullName]);

    [Fact]
    public async Task Results_json_lists_one_object_per_point_with_the_documented_fields()
    {
        await SeedAsync();

        var (exit, json, err) = await CliAsync("results", "res", "--format", "json");

        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(_plan.SweepId, root.GetProperty("sweep_id").GetString());
        Assert.Equal(0.95, root.GetProperty("confidence").GetDouble());
        Assert.Equal(["dataset", "split", "method", "size"], root.GetProperty("group_by").EnumerateArray().Select(e => e.GetString()));
        var points = root.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(4, points.Count);
        foreach (var field in new[] { "dataset", "split", "method", "size", "metric", "n", "expected", "failed", "complete", "mean", "sd", "ci_low", "ci_high", "ci_half_width", "min", "max" })
        {
            Assert.All(points, p => Assert.True(p.TryGetProperty(field, out _), field));
        }

        var ft10 = points.Single(p => p.GetProperty("method").GetString() == "finetune" && p.GetProperty("size").GetInt32() == 10);
        Assert.Equal((3, 3, true), (ft10.GetProperty("n").GetInt32(), ft10.GetProperty("expected").GetInt32(), ft10.GetProperty("complete").GetBoolean()));
        Assert.Equal(11, ft10.GetProperty("mean").GetDouble(), 9);            // 10, 11, 12
        Assert.Equal(1, ft10.GetProperty("sd").GetDouble(), 9);
        Assert.Equal(11 - 4.302652729749464 / Math.Sqrt(3), ft10.GetProperty("ci_low").GetDouble(), 6);
        Assert.Equal((10.0, 12.0), (ft10.GetProperty("min").GetDouble(), ft10.GetProperty("max").GetDouble()));

        var prefix20 = points.Single(p => p.GetProperty("method").GetString() == "prefix" && p.GetProperty("size").GetInt32() == 20);
        Assert.Equal((2, 3, false), (prefix20.GetProperty("n").GetInt32(), prefix20.GetProperty("expected").GetInt32(), prefix20.GetProperty("complete").GetBoolean()));
        Assert.Equal(22.5, prefix20.GetProperty("mean").GetDouble(), 9);     // 22, 23
        Assert.Equal(JsonValueKind.Null, root.GetProperty("comparison").ValueKind);
    }

    [Fact]
    public async Task Results_csv_round_trips_to_the_json_values_and_by_method_pools_sizes()
    {
        await SeedAsync();

        var (exit, csv, err) = await CliAsync("results", "res", "--format", "csv");
        var (_, json, _) = await CliAsync("results", "res", "--format", "json");

        Assert.True(exit == 0, err);
        var rows = ParseCsv(csv);
        Assert.Equal(ResultsReport.PointColumns, rows[0]);
        var points = JsonDocument.Parse(json).RootElement.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(points.Count, rows.Count - 1);
        for (var i = 0; i < points.Count; i++)
        {
            var row = rows[0].Zip(rows[i + 1]).ToDictionary(x => x.First, x => x.Second);
            Assert.Equal(points[i].GetProperty("method").GetString(), row["method"]);
            Assert.Equal(points[i].GetProperty("size").GetInt32(), int.Parse(row["size"], CultureInfo.InvariantCulture));
            Assert.Equal(points[i].GetProperty("n").GetInt32(), int.Parse(row["n"], CultureInfo.InvariantCulture));
            Assert.Equal(points[i].GetProperty("mean").GetDouble(), double.Parse(row["mean"], CultureInfo.InvariantCulture));
            Assert.Equal(points[i].GetProperty("ci_high").GetDouble(), double.Parse(row["ci_high"], CultureInfo.InvariantCulture));
            Assert.Equal(points[i].GetProperty("complete").GetBoolean(), bool.Parse(row["complete"]));
        }

        var (_, byMethod, _) = await CliAsync("results", "res", "--format", "csv", "--by", "method");
        var pooled = ParseCsv(byMethod);
        Assert.Equal(3, pooled.Count);
        var prefix = rows[0].Zip(pooled.Single(r => r.Contains("prefix"))).ToDictionary(x => x.First, x => x.Second);
        Assert.Equal(("", "5", "6"), (prefix["size"], prefix["n"], prefix["expected"]));
        Assert.Equal((12 + 13 + 14 + 22 + 23) / 5.0, double.Parse(prefix["mean"], CultureInfo.InvariantCulture), 9);
    }

    [Fact]
    public async Task Markdown_latex_and_table_contain_the_rows_and_compare_gives_paired_differences()
    {
        await SeedAsync();

        var (exit, markdown, err) = await CliAsync("results", "res", "--format", "markdown");
        Assert.True(exit == 0, err);
        Assert.Contains("| method | size | n/expected | mean ± 95% CI | sd | min | max |", markdown);
        Assert.Contains("| finetune | 10 | 3/3 | 11.00 ± 2.48 | 1.00 | 10.00 | 12.00 |", markdown);   // 4.3027 · 1 / √3 = 2.484
        Assert.Contains("| prefix | 20 | 2/3 (incomplete) | 22.50 ± 6.35 | 0.71 | 22.00 | 23.00 |", markdown); // 12.706 · 0.7071 / √2

        var (_, latex, _) = await CliAsync("results", "res", "--format", "latex");
        Assert.Contains("% needs \\usepackage{booktabs} in the preamble", latex);
        Assert.Contains("\\begin{tabular}{lrrrrrr}", latex);
        Assert.Contains("finetune & 10 & 3/3 & 11.00 $\\pm$ 2.48 & 1.00 & 10.00 & 12.00 \\\\", latex);
        Assert.Contains("\\bottomrule", latex);

        var (tableExit, _, tableErr) = await CliAsync("results", "res");
        Assert.True(tableExit == 0, tableErr);

        var (cmpExit, compared, cmpErr) = await CliAsync("results", "res", "--compare", "prefix", "finetune", "--format", "csv");
        Assert.True(cmpExit == 0, cmpErr);
        var rows = ParseCsv(compared);
        Assert.Equal(ResultsReport.PairedColumns, rows[0]);
        var at20 = rows[0].Zip(rows.Single(r => r[3] == "20")).ToDictionary(x => x.First, x => x.Second);
        Assert.Equal(("2", "2"), (at20["pairs"], at20["mean_diff"]));   // the unfinished prefix cell has no pair
        // Differences 2 and 2: sd 0, a zero-width interval (defined, unlike n = 1).
        Assert.Equal(2.0, double.Parse(at20["ci_low"], CultureInfo.InvariantCulture), 9);

        var (badExit, _, badErr) = await CliAsync("results", "res", "--compare", "prefix", "lora");
        Assert.Equal(CliApp.ExitInvalidInput, badExit);
        Assert.Contains("no method 'lora'", badErr);
        Assert.Single(badErr.Trim().Split('\n'));

        var (typoExit, _, typoErr) = await CliAsync("results", "res", "--compare", "prefx", "finetune");
        Assert.Equal(CliApp.ExitInvalidInput, typoExit);
        Assert.Contains("sweep res has no method 'prefx' (did you mean 'prefix'?)", typoErr);
        var (metricExit, _, metricErr) = await CliAsync("results", "res", "--metric", "bleuu");
        Assert.Equal(CliApp.ExitInvalidInput, metricExit);
        Assert.Contains("sweep res has no metric 'bleuu' (did you mean 'bleu'?)", metricErr);
    }

    [Fact]
    public async Task Plot_writes_a_png_and_an_svg_of_the_requested_size_with_one_series_per_method()
    {
        await SeedAsync();
        var png = Path.Combine(_dir.FullName, "fig.png");
        var svg = Path.Combine(_dir.FullName, "fig.svg");

        var (exit, _, err) = await CliAsync("plot", "res", "--metric", "bleu", "--out", png, "--width", "640", "--height", "480");
        Assert.True(exit == 0, err);
        var bytes = await File.ReadAllBytesAsync(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.Equal(640, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal(480, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));

        (exit, _, err) = await CliAsync("plot", "res", "--out", svg, "--width", "800", "--height", "500");
        Assert.True(exit == 0, err);
        var text = await File.ReadAllTextAsync(svg);
        Assert.StartsWith("<?xml", text);
        Assert.Contains("<svg", text);
        Assert.Contains("width=\"800\"", text);
        Assert.Contains("height=\"500\"", text);

        // The plot object: one panel (one dataset/split), one line per method, each with its band.
        await using var store = ResultStores.Sqlite(DatabasePath);
        var sums = await store.GetPointSumsAsync(_plan.SweepId, "bleu");
        var panels = ResultsPlot.Build(PointAggregation.Summarize(sums, PointKeys.All, "bleu"), "bleu", showDataset: false);
        var plot = Assert.Single(panels).Plot;
        var lines = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
        Assert.Equal(["finetune", "prefix"], lines.Select(l => l.LegendText));
        Assert.Equal(2, plot.GetPlottables().OfType<ScottPlot.Plottables.FillY>().Count());
        Assert.Equal(22.5, lines[1].Data.GetScatterPoints()[1].Y, 9);

        // A sweep's selection cells (results' selection/METHOD rows, each point a mix of candidates) draw no line.
        var withSelection = PointAggregation.Summarize(sums, PointKeys.All, "bleu").ToList();
        withSelection.AddRange(withSelection.Where(p => p.Method == "finetune").Select(p => p with { Method = "selection/finetune" }).ToList());
        Assert.Equal(["finetune", "prefix"], Assert.Single(ResultsPlot.Build(withSelection, "bleu", showDataset: false)).Plot
            .GetPlottables().OfType<ScottPlot.Plottables.Scatter>().Select(l => l.LegendText));

        // The caption says what line and band are and over how many cells; the legend sits beside the data, not over a band.
        var summaries = PointAggregation.Summarize(sums, PointKeys.All, "bleu");
        var captioned = Assert.Single(ResultsPlot.Build(summaries, "bleu", showDataset: false, sweep: "res")).Plot;
        Assert.StartsWith("res", captioned.Axes.Title.Label.Text);
        var counts = summaries.Select(p => p.Statistics.N).Distinct().ToList();
        Assert.EndsWith($"over n = {(counts.Count == 1 ? counts[0].ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{counts.Min()}–{counts.Max()}")} cells per point",
            captioned.Axes.Bottom.Label.Text);
        Assert.Contains(captioned.Axes.GetPanels(), p => p.GetType().Name.Contains("Legend", StringComparison.Ordinal));
        Assert.False(captioned.Legend.IsVisible); // no legend inside the data area

        var (badExit, _, badErr) = await CliAsync("plot", "res", "--out", Path.Combine(_dir.FullName, "fig.gif"));
        Assert.Equal(CliApp.ExitInvalidInput, badExit);
        Assert.Contains(".png or .svg", badErr);

        // On a log scale the points sit at log10(size), ticked with the sizes themselves.
        (exit, _, err) = await CliAsync("plot", "res", "--out", png, "--x-scale", "log");
        Assert.True(exit == 0, err);
        var logPlot = Assert.Single(ResultsPlot.Build(PointAggregation.Summarize(sums, PointKeys.All, "bleu"), "bleu", showDataset: false, ResultsPlot.LogScale)).Plot;
        var logLines = logPlot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
        var linearXs = lines[1].Data.GetScatterPoints().Select(p => p.X).ToList();
        Assert.Equal(linearXs.Select(Math.Log10), logLines[1].Data.GetScatterPoints().Select(p => p.X));
        Assert.Equal(22.5, logLines[1].Data.GetScatterPoints()[1].Y, 9);
        using (logPlot.GetImage(400, 300))
        {
        } // ticks are generated when the plot is laid out

        var ticks = logPlot.Axes.Bottom.TickGenerator.Ticks;
        Assert.Equal(linearXs.Select(Math.Log10), ticks.Select(t => t.Position));
        Assert.Equal(linearXs.Select(x => x.ToString(System.Globalization.CultureInfo.InvariantCulture)), ticks.Select(t => t.Label));
        var (scaleExit, _, scaleErr) = await CliAsync("plot", "res", "--out", png, "--x-scale", "sqrt");
        Assert.NotEqual(0, scaleExit);
        Assert.Contains("sqrt", scaleErr);
    }

    [Fact]
    public async Task Export_writes_every_cell_with_provenance_and_scores_as_csv_and_jsonl()
    {
        await SeedAsync();
        var csvPath = Path.Combine(_dir.FullName, "cells.csv");
        var jsonlPath = Path.Combine(_dir.FullName, "cells.jsonl");

        var (exit, _, err) = await CliAsync("export", "res", "--format", "csv", "--out", csvPath);
        Assert.True(exit == 0, err);
        var rows = ParseCsv(await File.ReadAllTextAsync(csvPath));
        Assert.Equal(_cells.Count + 1, rows.Count);
        var header = rows[0];
        Assert.Contains("metric:bleu", header);
        Assert.Contains("provenance_json", header);
        var byKey = rows.Skip(1).Select(r => header.Zip(r).ToDictionary(x => x.First, x => x.Second)).ToDictionary(r => r["cell_key"]);
        foreach (var c in _cells)
        {
            var row = byKey[c.CellKey];
            Assert.Equal((c.Method, c.Size.ToString(CultureInfo.InvariantCulture)), (row["method"], row["size"]));
            if (row["status"] == "pending")
            {
                Assert.Equal(("prefix", 20, 2), (c.Method, c.Size, c.Subsample));
                continue;
            }

            Assert.Equal(Bleu(c), double.Parse(row["metric:bleu"], CultureInfo.InvariantCulture));
            Assert.Equal(c.Seed, JsonDocument.Parse(row["provenance_json"]).RootElement.GetProperty("seed").GetInt32());
        }

        (exit, _, err) = await CliAsync("export", "res", "--format", "jsonl", "--out", jsonlPath, "--with-outputs");
        Assert.True(exit == 0, err);
        var lines = (await File.ReadAllLinesAsync(jsonlPath)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(_cells.Count, lines.Count);
        var done = lines.First(l => l.GetProperty("status").GetString() == "succeeded");
        Assert.Equal("w1", done.GetProperty("worker_id").GetString());
        Assert.Equal(1, done.GetProperty("attempt").GetInt32());
        Assert.Equal("h", done.GetProperty("provenance").GetProperty("dataset_hash").GetString());
        Assert.Equal(JsonValueKind.Number, done.GetProperty("metrics").GetProperty("bleu").ValueKind);
        Assert.Equal(["a", "b"], done.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()));
    }

    [Fact]
    public async Task Results_from_exported_cells_equal_the_sweeps_own_and_pair_methods_exported_from_different_files()
    {
        await SeedAsync();
        var csvPath = Path.Combine(_dir.FullName, "all.csv");
        var jsonlPath = Path.Combine(_dir.FullName, "all.jsonl");
        Assert.Equal(0, (await CliAsync("export", "res", "--format", "csv", "--out", csvPath)).Exit);
        Assert.Equal(0, (await CliAsync("export", "res", "--format", "jsonl", "--out", jsonlPath)).Exit);

        // The same points and paired differences as the database gives, from either export format.
        var (_, fromDb, _) = await CliAsync("results", "res", "--format", "json", "--compare", "prefix", "finetune");
        foreach (var file in new[] { csvPath, jsonlPath })
        {
            var (exit, fromFile, err) = await CliAsync("results", "--cells", file, "--format", "json", "--compare", "prefix", "finetune");
            Assert.True(exit == 0, err);
            Assert.Equal(Section(fromDb, "points"), Section(fromFile, "points"));
            Assert.Equal(Section(fromDb, "comparison"), Section(fromFile, "comparison"));
        }

        // One method per file (as when a method is rerun in another sweep): pooled and paired as if in one sweep.
        var lines = await File.ReadAllLinesAsync(csvPath);
        var methodColumn = Array.IndexOf(ParseCsv(lines[0])[0], "method");
        string[] Of(string method) => [lines[0], .. lines.Skip(1).Where(l => ParseCsv(l)[0][methodColumn] == method)];
        var finetunePath = Path.Combine(_dir.FullName, "finetune.csv");
        var prefixPath = Path.Combine(_dir.FullName, "prefix.csv");
        await File.WriteAllLinesAsync(finetunePath, Of("finetune"));
        await File.WriteAllLinesAsync(prefixPath, Of("prefix"));
        var (splitExit, split, splitErr) = await CliAsync("results", "--cells", finetunePath, prefixPath, "--format", "json", "--compare", "prefix", "finetune");
        Assert.True(splitExit == 0, splitErr);
        Assert.Equal(Section(fromDb, "points"), Section(split, "points"));
        Assert.Equal(Section(fromDb, "comparison"), Section(split, "comparison"));
        var (_, markdown, _) = await CliAsync("results", "--cells", finetunePath, prefixPath, "--format", "markdown");
        Assert.Contains("| prefix | 20 | 2/3 (incomplete) | 22.50 ± 6.35 | 0.71 | 22.00 | 23.00 |", markdown);

        // The plot of the combined files: one curve per method, named after the files.
        var svg = Path.Combine(_dir.FullName, "combined.svg");
        var (plotExit, _, plotErr) = await CliAsync("plot", "--cells", finetunePath, prefixPath, "--out", svg);
        Assert.True(plotExit == 0, plotErr);
        var drawn = await File.ReadAllTextAsync(svg);
        Assert.StartsWith("<?xml", drawn);
        Assert.Contains("<svg", drawn);
        var (plotBadExit, _, plotBadErr) = await CliAsync("plot", "--cells", finetunePath, "--metric", "rouge", "--out", svg);
        Assert.Equal(CliApp.ExitInvalidInput, plotBadExit);
        Assert.Contains("the cells of finetune.csv has no metric 'rouge'", plotBadErr);

        // Cells trained on other examples are not paired across files.
        var otherData = Path.Combine(_dir.FullName, "prefix-other-data.csv");
        await File.WriteAllLinesAsync(otherData, Of("prefix").Select(l => l.Replace("m10-1", "m10-9", StringComparison.Ordinal)));
        var (badExit, _, badErr) = await CliAsync("results", "--cells", finetunePath, otherData, "--compare", "prefix", "finetune");
        Assert.Equal(CliApp.ExitInvalidInput, badExit);
        Assert.Contains("cannot pair prefix synthetic-e2e/default n=10 sub1 seed0 (prefix-other-data.csv) with finetune", badErr);
        Assert.Contains("different examples (manifest m10-9 vs m10-1)", badErr);

        // Two runs of one method (different keys at the same place) are refused, not pooled.
        var rerun = Path.Combine(_dir.FullName, "finetune-rerun.csv");
        await File.WriteAllLinesAsync(rerun, Of("finetune").Select((l, i) => i == 0 ? l : "x" + l));
        var (dupExit, _, dupErr) = await CliAsync("results", "--cells", finetunePath, rerun);
        Assert.Equal(CliApp.ExitInvalidInput, dupExit);
        Assert.Contains("finetune.csv and finetune-rerun.csv both have a cell for finetune synthetic-e2e/default n=", dupErr);
        Assert.Contains("two runs of one method cannot be pooled", dupErr);

        // Not an export; a sweep and files at once.
        var junk = Path.Combine(_dir.FullName, "junk.csv");
        await File.WriteAllTextAsync(junk, "mr,ref\na,b\n");
        var (junkExit, _, junkErr) = await CliAsync("results", "--cells", junk);
        Assert.Equal(CliApp.ExitInvalidInput, junkExit);
        Assert.Contains("junk.csv is not a CSV written by `orchestrator export`: its header lacks cell_key", junkErr);
        Assert.Contains("(found: mr,ref)", junkErr);
        var (bothExit, _, bothErr) = await CliAsync("results", "res", "--cells", csvPath);
        Assert.Equal(CliApp.ExitInvalidInput, bothExit);
        Assert.Contains("a SWEEP or --cells", bothErr);
    }

    private static string Section(string json, string name) => JsonDocument.Parse(json).RootElement.GetProperty(name).GetRawText();

    [Fact]
    public async Task Rescore_restores_a_corrupted_metric_to_what_bleu_computes_from_the_stored_outputs()
    {
        var references = DatasetCatalog.Load(_plan.Dataset).Eval.Select(e => e.References).ToList();
        // Outputs: each input's first reference, with the last word dropped for every other input.
        IReadOnlyList<string> Outputs(CellDescriptor c) => references
            .Select((r, i) => (i + c.Subsample) % 2 == 0 ? r[0] : string.Join(' ', r[0].Split(' ')[..^1]))
            .ToList();
        await SeedAsync(Outputs);
        var target = _cells.First(c => c.Method == "finetune" && c.Size == 10 && c.Subsample == 1);
        var expected = SacreBleu.CorpusFromGroups(Outputs(target), references).Score;
        Assert.InRange(expected, 1, 99.9); // a non-trivial score
        await using (var raw = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DatabasePath};Pooling=False"))
        {
            await raw.OpenAsync();
            await using var corrupt = raw.CreateCommand();
            corrupt.CommandText = "UPDATE cell_metrics SET value = -1 WHERE cell_key = $k AND metric = 'bleu'";
            corrupt.Parameters.AddWithValue("$k", target.CellKey);
            Assert.Equal(1, await corrupt.ExecuteNonQueryAsync());
        }

        var (exit, output, err) = await CliAsync("rescore", "res", "--metrics", "bleu");

        Assert.True(exit == 0, err);
        Assert.Contains($"rescored {_cells.Count - 1} cell(s), skipped 1", output);
        await using var store = ResultStores.Sqlite(DatabasePath);
        var cells = (await store.GetSweepCellsAsync(_plan.SweepId)).ToDictionary(c => c.Cell.CellKey);
        Assert.Equal(expected, cells[target.CellKey].Result!.Metrics["bleu"], 9);
        Assert.Equal(1, cells[target.CellKey].Result!.Attempt);
        Assert.All(cells.Values.Where(c => c.Result is not null),
            c => Assert.Equal(SacreBleu.CorpusFromGroups(c.Result!.Outputs, references).Score, c.Result!.Metrics["bleu"], 9));

        var (badExit, _, badErr) = await CliAsync("rescore", "res", "--metrics", "nosuchmetric");
        Assert.Equal(CliApp.ExitInvalidInput, badExit);
        Assert.Contains("unknown metric", badErr);
    }

    [Fact]
    public async Task Commands_report_an_unknown_sweep_in_one_line_and_have_help()
    {
        await SeedAsync();
        foreach (var command in new[] { "results", "plot", "export", "rescore" })
        {
            var (help, helpText, _) = await CliAsync(command, "--help");
            Assert.Equal(0, help);
            Assert.Contains("--cluster", helpText);
        }

        var (exit, _, err) = await CliAsync("results", "nosuchsweep");
        Assert.Equal(CliApp.ExitInvalidInput, exit);
        Assert.StartsWith("error: no sweep with id or name 'nosuchsweep'", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Per_method_progress_counts_queue_states_and_cells_done_before()
    {
        var methods = new Dictionary<string, string> { ["a"] = "ft", ["b"] = "ft", ["c"] = "ft", ["d"] = "pt", ["e"] = "pt" };
        var states = new Dictionary<string, string> { ["a"] = "leased", ["b"] = "failed", ["d"] = "done", ["e"] = "pending" };

        var counts = ProgressDisplay.Count(methods, states, new HashSet<string> { "c" });

        Assert.Equal([new ProgressDisplay.MethodProgress("ft", 3, 1, 1, 1), new ProgressDisplay.MethodProgress("pt", 2, 1, 0, 0)], counts);
    }

    /// <summary>RFC 4180: quoted fields with doubled quotes, commas and newlines.</summary>
    private static List<string[]> ParseCsv(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') { quoted = false; }
                else { field.Append(c); }
            }
            else if (c == '"') { quoted = true; }
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\n') { row.Add(field.ToString()); field.Clear(); rows.Add([.. row]); row.Clear(); }
            else if (c != '\r') { field.Append(c); }
        }

        if (field.Length > 0 || row.Count > 0)
        {
            row.Add(field.ToString());
            rows.Add([.. row]);
        }

        return rows;
    }
}
