using Orchestrator.Cli.Commands;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.IntegrationTests;

public sealed class ComputeReportTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 9, 0, 0, TimeSpan.Zero);

    private static (CellDescriptor, CellResultRecord?) Cell(string key, string method, double wall, double finishedAfter, string provenance,
        string status = CellStatus.Succeeded) =>
        (new CellDescriptor(key, "e2e", "default", method, 50, 0, 0, "{}"),
            new CellResultRecord(key, 1, status, new Dictionary<string, double>(), null, "w", "cpu", wall, 0, provenance, [],
                T0 + TimeSpan.FromSeconds(finishedAfter)));

    [Fact]
    public void Counts_packed_and_reused_cells_and_measures_elapsed_time_from_the_first_start_to_the_last_finish()
    {
        var rows = new List<(CellDescriptor, CellResultRecord?)>
        {
            Cell("a", "finetune", 100, 100, """{"packing":{"packed":false}}"""),
            Cell("b", "prefix", 50, 160, """{"packing":{"packed":true,"largest_pack":2}}"""),
            Cell("c", "prefix", 60, 170, """{"packing":{"packed":true,"largest_pack":2}}"""),
            Cell("d", "prefix", 10, 200, """{"packing":{"packed":true,"largest_pack":1},"reused_training":true}"""),   // a pack of 1 is alone
            Cell("e", "prefix", 999, 300, "{}", CellStatus.Failed),   // failed cells cost nothing here
            (new CellDescriptor("f", "e2e", "default", "prefix", 50, 0, 1, "{}"), null),
        };
        var (perMethod, elapsed, cells) = ComputeReport.Build(rows);
        Assert.Equal(4, cells);
        Assert.Equal(200, elapsed, 6);   // first start: a at 0 s; last finish: d at 200 s
        var finetune = Assert.Single(perMethod, r => r.Method == "finetune");
        var prefix = Assert.Single(perMethod, r => r.Method == "prefix");
        Assert.Equal((1, 0, 0, 100.0), (finetune.Cells, finetune.Packed, finetune.ReusedTraining, finetune.WallSeconds));
        Assert.Equal((3, 2, 1, 120.0), (prefix.Cells, prefix.Packed, prefix.ReusedTraining, prefix.WallSeconds));
        Assert.Equal(40, prefix.MeanSeconds, 6);
        var text = ComputeReport.Render("s", rows, "markdown");
        Assert.Contains("| prefix | 3 | 2 | 1 |", text, StringComparison.Ordinal);
        Assert.Contains("4 cells finished in 0.06 h elapsed", text, StringComparison.Ordinal);
        Assert.Contains("72.0 cells/hour", text, StringComparison.Ordinal);
    }
}

public sealed class ResultsMarkdownTests
{
    [Fact]
    public void Markdown_results_of_a_split_sweep_include_the_generalization_gap_table()
    {
        var gap = new Orchestrator.Core.Aggregation.PairedSummary(null, null, "prefix", 100,
            Orchestrator.Core.Aggregation.MetricStatistics.Of([10.0, 12.0, 14.0]));
        var report = new ResultsReport("s-1", "s", "bleu", Orchestrator.Core.Aggregation.PointKeys.All, [], null, [gap]);
        var text = report.Markdown();
        Assert.Contains("**generalization gap: seen − unseen", text, StringComparison.Ordinal);
        // mean 12, sd 2, t(0.975, 2) = 4.303: half-width 4.303 · 2 / √3 = 4.97
        Assert.Contains("| prefix | 100 | 3 | 12.00 ± 4.97 | 2.00 |", text, StringComparison.Ordinal);
        Assert.DoesNotContain("generalization gap", (report with { Gap = [] }).Markdown(), StringComparison.Ordinal);
    }
}

public sealed class ResultsPlotPanelTests
{
    [Fact]
    public void Every_panel_of_a_multi_panel_plot_is_drawn()
    {
        var panels = Enumerable.Range(0, 3).Select(i =>
        {
            var plot = new ScottPlot.Plot();
            plot.Add.Scatter(new double[] { 50, 100 }, new double[] { i, i + 1 });
            plot.Title($"panel {i}");
            return ($"panel {i}", plot);
        }).ToList();
        var path = Path.Combine(Path.GetTempPath(), $"panels-{Guid.NewGuid():N}.png");
        try
        {
            ResultsPlot.Save(panels, path, 600, 400);
            using var bitmap = SkiaSharp.SKBitmap.Decode(path);
            Assert.Equal((600, 400), (bitmap.Width, bitmap.Height));

            // 2 × 2 grid: panels 0 and 1 on top, 2 bottom-left, the bottom-right cell empty.
            int Inked(int x0, int y0) => Enumerable.Range(0, 300 * 200).Count(k =>
                bitmap.GetPixel(x0 + k % 300, y0 + k / 300) is var c && (c.Red < 200 || c.Green < 200 || c.Blue < 200));
            Assert.True(Inked(0, 0) > 1000, "panel 0 was erased");
            Assert.True(Inked(300, 0) > 1000, "panel 1 was erased");
            Assert.True(Inked(0, 200) > 1000, "panel 2 is missing");
            Assert.Equal(0, Inked(300, 200));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
