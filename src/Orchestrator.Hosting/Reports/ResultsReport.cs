using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Abstractions;
using Orchestrator.Core.Aggregation;
using Orchestrator.Grains;
using Orchestrator.Results;
using Spectre.Console;

namespace Orchestrator.Hosting;

/// <summary>
/// What <c>orchestrator results</c> prints: the points (mean ± 95% CI with n/expected), optionally a paired comparison of two
/// methods and the generalization gap (seen − unseen), in table, markdown, csv, json or latex form.
/// </summary>
public sealed record ResultsReport(
    string SweepId,
    string Name,
    string? Metric,
    PointKeys By,
    IReadOnlyList<PointSummary> Points,
    ResultsReport.Comparison? Compared,
    IReadOnlyList<PairedSummary> Gap)
{
    public static readonly string[] Formats = ["table", "markdown", "csv", "json", "latex"];

    /// <summary>The report for <c>results</c> (and the web page), from the sweep's results grain: one code path for the numbers.</summary>
    public static async Task<ResultsReport> BuildAsync(IGrainFactory grains, SweepRecord sweep, string? metric, PointKeys by,
        (string A, string B)? compare)
    {
        var grain = grains.GetGrain<IResultsGrain>(sweep.SweepId);
        var results = await grain.GetAsync();
        return await AssembleAsync(sweep.SweepId, $"sweep {sweep.Name}", sweep.Name, results.Points.Select(p => p.ToSums()).ToList(), metric,
            metric ?? PrimaryMetric(sweep, results), by, compare,
            async (column, a, b, primary) => (await grain.GetPairsAsync(primary, column == PairedBy.Method ? "method" : "split", a, b)).Pairs.Select(p => p.ToObservation()));
    }

    /// <summary>
    /// The same report from cells exported by <c>orchestrator export</c> (<c>results --cells FILE…</c>, <see cref="ExportedCells"/>):
    /// the points and pairs by the database's rules; named after the files. The primary metric is <paramref name="metric"/>, else
    /// the first present in name order.
    /// </summary>
    public static Task<ResultsReport> FromCellsAsync(IReadOnlyList<string> files, IReadOnlyList<ExportedCell> cells, string? metric, PointKeys by,
        (string A, string B)? compare)
    {
        var sums = ExportedCells.Points(cells);
        var name = string.Join(" + ", files.Select(Path.GetFileName));
        var primary = metric ?? sums.Select(p => p.Metric).Order(StringComparer.Ordinal).FirstOrDefault() ?? "bleu";
        return AssembleAsync(name, $"the cells of {name}", name, sums, metric, primary, by, compare,
            (column, a, b, m) => Task.FromResult<IEnumerable<PairedObservation>>(ExportedCells.Pairs(cells, m, column, a, b)));
    }

    private static async Task<ResultsReport> AssembleAsync(string id, string what, string name, IReadOnlyList<PointSums> sums, string? metric, string primary,
        PointKeys by, (string A, string B)? compare, Func<PairedBy, string, string, string, Task<IEnumerable<PairedObservation>>> pairsOf)
    {
        if (metric is not null && sums.Count > 0 && sums.All(p => p.Metric != metric))
        {
            var present = sums.Select(p => p.Metric).Distinct().ToList();
            throw new ArgumentException($"{what} has no metric '{metric}'{Core.Specs.Suggestion.DidYouMean(metric, present)} (it has: {string.Join(", ", present)})");
        }

        var points = PointAggregation.Summarize(sums, by, metric);
        ResultsReport.Comparison? comparison = null;
        if (compare is { } c)
        {
            var methods = sums.Select(p => p.Method).ToHashSet(StringComparer.Ordinal);
            foreach (var m in new[] { c.A, c.B }.Where(m => !methods.Contains(m)))
            {
                throw new ArgumentException(
                    $"{what} has no method '{m}'{Core.Specs.Suggestion.DidYouMean(m, methods)} (it has: {string.Join(", ", methods.Order(StringComparer.Ordinal))})");
            }

            var pairs = await pairsOf(PairedBy.Method, c.A, c.B, primary);
            comparison = new ResultsReport.Comparison(primary, c.A, c.B, PairedComparison.CompareMethods(pairs));
        }

        IReadOnlyList<PairedSummary> gap = [];
        var splits = sums.Select(p => p.Split).ToHashSet(StringComparer.Ordinal);
        if (splits.Contains(PairedComparison.Seen) && splits.Contains(PairedComparison.Unseen))
        {
            gap = PairedComparison.GeneralizationGap(await pairsOf(PairedBy.Split, PairedComparison.Seen, PairedComparison.Unseen, primary));
        }

        return new ResultsReport(id, name, metric, by, points, comparison, gap);
    }

    /// <summary>The spec's first metric that has values, else any metric with values, else the spec's first.</summary>
    public static string PrimaryMetric(SweepRecord sweep, SweepResults results)
    {
        var present = results.Points.Select(p => p.Metric).Distinct(StringComparer.Ordinal).ToList();
        return sweep.Metrics.FirstOrDefault(present.Contains) ?? present.FirstOrDefault() ?? sweep.Metrics.FirstOrDefault() ?? "bleu";
    }

    /// <summary>Method A − method B per (dataset, split, size).</summary>
    public sealed record Comparison(string Metric, string A, string B, IReadOnlyList<PairedSummary> Rows);

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // files and pipes, not HTML
    };

    public string Render(string format) => format switch
    {
        "markdown" => Markdown(),
        "csv" => Csv(),
        "json" => JsonText(),
        "latex" => Latex(),
        _ => throw new ArgumentException($"unknown format '{format}'"),
    };

    // ---------------------------------------------------------------- json

    /// <summary>The JSON document (fields documented in docs/results.md); NaN (undefined) values are null.</summary>
    public string JsonText() => JsonSerializer.Serialize(new JsonDocumentShape(
        SweepId, Name, Metric, KeyNames(By), MetricStatistics.Confidence,
        Points.Select(p => new JsonPoint(p.Dataset, p.Split, p.Method, p.Size, p.Metric, p.Statistics.N, p.Expected, p.Failed, p.Complete,
            N(p.Statistics.Mean), N(p.Statistics.StdDev), N(p.Statistics.CiLow), N(p.Statistics.CiHigh), N(p.Statistics.HalfWidth),
            N(p.Statistics.Min), N(p.Statistics.Max))).ToList(),
        Compared is null ? null : new JsonComparison(Compared.Metric, Compared.A, Compared.B, Compared.Rows.Select(ToJson).ToList()),
        Gap.Select(ToJson).ToList()), Json);

    private static JsonPaired ToJson(PairedSummary s) =>
        new(s.Dataset, s.Split, s.Method, s.Size, s.Difference.N, N(s.Difference.Mean), N(s.Difference.StdDev), N(s.Difference.CiLow), N(s.Difference.CiHigh));

    private static double? N(double value) => double.IsNaN(value) || double.IsInfinity(value) ? null : value;

    private sealed record JsonDocumentShape(
        [property: JsonPropertyName("sweep_id")] string SweepId,
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("metric")] string? Metric,
        [property: JsonPropertyName("group_by")] IReadOnlyList<string> GroupBy,
        [property: JsonPropertyName("confidence")] double Confidence,
        [property: JsonPropertyName("points")] IReadOnlyList<JsonPoint> Points,
        [property: JsonPropertyName("comparison")] JsonComparison? Comparison,
        [property: JsonPropertyName("generalization_gap")] IReadOnlyList<JsonPaired> GeneralizationGap);

    private sealed record JsonPoint(
        [property: JsonPropertyName("dataset")] string? Dataset,
        [property: JsonPropertyName("split")] string? Split,
        [property: JsonPropertyName("method")] string? Method,
        [property: JsonPropertyName("size")] int? Size,
        [property: JsonPropertyName("metric")] string Metric,
        [property: JsonPropertyName("n")] int N,
        [property: JsonPropertyName("expected")] int Expected,
        [property: JsonPropertyName("failed")] int Failed,
        [property: JsonPropertyName("complete")] bool Complete,
        [property: JsonPropertyName("mean")] double? Mean,
        [property: JsonPropertyName("sd")] double? Sd,
        [property: JsonPropertyName("ci_low")] double? CiLow,
        [property: JsonPropertyName("ci_high")] double? CiHigh,
        [property: JsonPropertyName("ci_half_width")] double? CiHalfWidth,
        [property: JsonPropertyName("min")] double? Min,
        [property: JsonPropertyName("max")] double? Max);

    private sealed record JsonComparison(
        [property: JsonPropertyName("metric")] string Metric,
        [property: JsonPropertyName("a")] string A,
        [property: JsonPropertyName("b")] string B,
        [property: JsonPropertyName("rows")] IReadOnlyList<JsonPaired> Rows);

    private sealed record JsonPaired(
        [property: JsonPropertyName("dataset")] string? Dataset,
        [property: JsonPropertyName("split")] string? Split,
        [property: JsonPropertyName("method")] string? Method,
        [property: JsonPropertyName("size")] int? Size,
        [property: JsonPropertyName("pairs")] int Pairs,
        [property: JsonPropertyName("mean_diff")] double? MeanDiff,
        [property: JsonPropertyName("sd")] double? Sd,
        [property: JsonPropertyName("ci_low")] double? CiLow,
        [property: JsonPropertyName("ci_high")] double? CiHigh);

    // ---------------------------------------------------------------- csv (points, or the comparison with --compare)

    public static readonly string[] PointColumns =
        ["dataset", "split", "method", "size", "metric", "n", "expected", "failed", "complete", "mean", "sd", "ci_low", "ci_high", "min", "max"];

    public static readonly string[] PairedColumns = ["dataset", "split", "method", "size", "a", "b", "pairs", "mean_diff", "sd", "ci_low", "ci_high"];

    public string Csv()
    {
        var text = new StringBuilder();
        if (Compared is not null)
        {
            text.AppendLine(string.Join(',', PairedColumns));
            foreach (var r in Compared.Rows)
            {
                CsvRow(text, r.Dataset, r.Split, r.Method, Int(r.Size), Compared.A, Compared.B, Int(r.Difference.N), R(r.Difference.Mean),
                    R(r.Difference.StdDev), R(r.Difference.CiLow), R(r.Difference.CiHigh));
            }

            return text.ToString();
        }

        text.AppendLine(string.Join(',', PointColumns));
        foreach (var p in Points)
        {
            var s = p.Statistics;
            CsvRow(text, p.Dataset, p.Split, p.Method, Int(p.Size), p.Metric, Int(s.N), Int(p.Expected), Int(p.Failed),
                p.Complete ? "true" : "false", R(s.Mean), R(s.StdDev), R(s.CiLow), R(s.CiHigh), R(s.Min), R(s.Max));
        }

        return text.ToString();
    }

    public static void CsvRow(StringBuilder text, params string?[] fields)
    {
        text.AppendLine(string.Join(',', fields.Select(CsvField)));
    }

    public static string CsvField(string? value)
    {
        value ??= "";
        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }

    /// <summary>Round-trip precision, invariant culture; empty when undefined.</summary>
    public static string R(double value) => double.IsNaN(value) ? "" : value.ToString("R", CultureInfo.InvariantCulture);

    private static string Int(int? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "";

    /// <summary>"mean ± half-width" (LaTeX: <c>$\pm$</c>); the mean alone without a half-width; "–" without a mean.</summary>
    private static string PlusMinus(double mean, double half, bool latex = false) =>
        double.IsNaN(mean) ? "–" : double.IsNaN(half) ? F(mean) : latex ? $"{F(mean)} $\\pm$ {F(half)}" : $"{F(mean)} ± {F(half)}";

    private const string GapTitle = "generalization gap: seen − unseen (mean ± 95% CI over shared subsample and seed)";

    // ---------------------------------------------------------------- human tables (table, markdown, latex)

    /// <summary>Header and rows for people: key columns that vary, n/expected, mean ± CI half-width, sd, min, max.</summary>
    private (IReadOnlyList<string> Header, IReadOnlyList<string[]> Rows, string Title) Human(bool latex)
    {
        string Pm(double mean, double half) => PlusMinus(mean, half, latex);

        if (Compared is not null)
        {
            var keys = VaryingKeys(Compared.Rows.Select(r => (r.Dataset, r.Split, (string?)null, r.Size)));
            var header = keys.Names.Concat(["pairs", $"{Compared.A} − {Compared.B}", "sd"]).ToList();
            var rows = Compared.Rows.Select(r => keys.Values((r.Dataset, r.Split, null, r.Size))
                .Concat([Int(r.Difference.N), Pm(r.Difference.Mean, r.Difference.HalfWidth), F(r.Difference.StdDev)]).ToArray()).ToList();
            return (header, rows, $"{Name}: {Compared.Metric} paired difference {Compared.A} − {Compared.B} (mean ± 95% CI over shared subsample and seed)");
        }

        var pointKeys = VaryingKeys(Points.Select(p => (p.Dataset, p.Split, p.Method, p.Size)));
        var showMetric = Points.Select(p => p.Metric).Distinct().Count() > 1;
        var pointHeader = pointKeys.Names.Concat(showMetric ? ["metric"] : []).Concat(["n/expected", "mean ± 95% CI", "sd", "min", "max"]).ToList();
        var pointRows = Points.Select(p => pointKeys.Values((p.Dataset, p.Split, p.Method, p.Size))
            .Concat(showMetric ? [p.Metric] : [])
            .Concat([$"{p.Statistics.N}/{p.Expected}" + (p.Complete ? "" : p.Failed > 0 ? $" (incomplete, {p.Failed} failed)" : " (incomplete)"),
                Pm(p.Statistics.Mean, p.Statistics.HalfWidth), F(p.Statistics.StdDev), F(p.Statistics.Min), F(p.Statistics.Max)]).ToArray()).ToList();
        var metrics = string.Join(", ", Points.Select(p => p.Metric).Distinct());
        return (pointHeader, pointRows, $"{Name}: {metrics} per point (mean ± 95% Student-t CI over cells)");
    }

    private (IReadOnlyList<string> Names, Func<(string?, string?, string?, int?), IEnumerable<string>> Values) VaryingKeys(
        IEnumerable<(string? Dataset, string? Split, string? Method, int? Size)> rows)
    {
        var list = rows.ToList();
        // A grouped key is shown when it varies, or when it is the only thing that identifies a row.
        var show = new[]
        {
            By.HasFlag(PointKeys.Dataset) && list.Select(r => r.Dataset).Distinct().Count() > 1,
            By.HasFlag(PointKeys.Split) && list.Select(r => r.Split).Distinct().Count() > 1,
            By.HasFlag(PointKeys.Method) && list.Any(r => r.Method is not null),
            By.HasFlag(PointKeys.Size) && list.Any(r => r.Size is not null),
        };
        string[] names = ["dataset", "split", "method", "size"];
        return (names.Where((_, i) => show[i]).ToList(), r =>
        {
            var values = new[] { r.Item1 ?? "", r.Item2 ?? "", r.Item3 ?? "", Int(r.Item4) };
            return values.Where((_, i) => show[i]);
        });
    }

    public void WriteTable()
    {
        var (header, rows, title) = Human(latex: false);
        var table = new Table().Title(Markup.Escape(title));
        foreach (var column in header)
        {
            table.AddColumn(column is "dataset" or "split" or "method" or "metric" ? new TableColumn(column) : new TableColumn(Markup.Escape(column)).RightAligned());
        }

        foreach (var row in rows)
        {
            table.AddRow(row.Select(Markup.Escape).ToArray());
        }

        AnsiConsole.Write(table);
        if (Compared is null && Gap.Count > 0)
        {
            var gap = new Table().Title(GapTitle)
                .AddColumn("method").AddColumn(new TableColumn("size").RightAligned()).AddColumn(new TableColumn("pairs").RightAligned())
                .AddColumn(new TableColumn("gap").RightAligned());
            foreach (var g in Gap)
            {
                gap.AddRow(Markup.Escape(g.Method ?? ""), Int(g.Size), Int(g.Difference.N),
                    Markup.Escape(PlusMinus(g.Difference.Mean, g.Difference.HalfWidth)));
            }

            AnsiConsole.Write(gap);
        }
    }

    public string Markdown()
    {
        var (header, rows, title) = Human(latex: false);
        var text = new StringBuilder();
        text.AppendLine($"**{title}**").AppendLine();
        text.AppendLine("| " + string.Join(" | ", header) + " |");
        text.AppendLine("|" + string.Concat(header.Select(h => h is "dataset" or "split" or "method" or "metric" ? "---|" : "---:|")));
        foreach (var row in rows)
        {
            text.AppendLine("| " + string.Join(" | ", row.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))) + " |");
        }

        if (Compared is null && Gap.Count > 0)
        {
            text.AppendLine().AppendLine($"**{GapTitle}**").AppendLine();
            text.AppendLine("| method | size | pairs | gap | sd |").AppendLine("|---|---:|---:|---:|---:|");
            foreach (var g in Gap)
            {
                text.AppendLine($"| {g.Method} | {Int(g.Size)} | {Int(g.Difference.N)} | {PlusMinus(g.Difference.Mean, g.Difference.HalfWidth)} | {F(g.Difference.StdDev)} |");
            }
        }

        return text.ToString();
    }

    public string Latex()
    {
        var (header, rows, title) = Human(latex: true);
        var text = new StringBuilder();
        text.AppendLine($"% {title}");
        text.AppendLine("% needs \\usepackage{booktabs} in the preamble (\\toprule, \\midrule, \\bottomrule)");
        text.AppendLine("\\begin{tabular}{" + string.Concat(header.Select(h => h is "dataset" or "split" or "method" or "metric" ? "l" : "r")) + "}");
        text.AppendLine("\\toprule");
        text.AppendLine(string.Join(" & ", header.Select(h => TeX(h).Replace("±", "$\\pm$", StringComparison.Ordinal).Replace("−", "$-$", StringComparison.Ordinal))) + " \\\\");
        text.AppendLine("\\midrule");
        foreach (var row in rows)
        {
            // Cells with $\pm$ are already TeX; the others are escaped.
            text.AppendLine(string.Join(" & ", row.Select(c => c.Contains("$\\pm$", StringComparison.Ordinal) ? c : TeX(c))) + " \\\\");
        }

        text.AppendLine("\\bottomrule");
        text.AppendLine("\\end{tabular}");
        return text.ToString();
    }

    public static string TeX(string value)
    {
        var text = new StringBuilder();
        foreach (var c in value)
        {
            text.Append(c switch
            {
                '\\' => "\\textbackslash{}",
                '&' or '%' or '$' or '#' or '_' or '{' or '}' => "\\" + c,
                '~' => "\\textasciitilde{}",
                '^' => "\\textasciicircum{}",
                '–' => "--",
                _ => c.ToString(),
            });
        }

        return text.ToString();
    }

    private static string F(double value) => double.IsNaN(value) ? "–" : value.ToString("F2", CultureInfo.InvariantCulture);

    private static IReadOnlyList<string> KeyNames(PointKeys by) =>
        new[] { (PointKeys.Dataset, "dataset"), (PointKeys.Split, "split"), (PointKeys.Method, "method"), (PointKeys.Size, "size") }
            .Where(k => by.HasFlag(k.Item1)).Select(k => k.Item2).ToList();
}
