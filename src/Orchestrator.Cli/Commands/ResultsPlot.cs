using System.Globalization;
using Orchestrator.Core.Aggregation;
using ScottPlot;
using SkiaSharp;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// The Figure-3-style chart: a metric against training-set size, one line per method with its 95% CI as a shaded band
/// (no band where n = 1), one panel per dataset/split, panels side by side in a grid. Rendered with ScottPlot (SkiaSharp).
/// The x axis is linear in the size, or logarithmic (<see cref="LogScale"/>: sizes such as 50/100/200/500 or 100/500/2000
/// spread evenly), ticked at the sizes either way. A sweep's selection cells are left out.
/// </summary>
internal static class ResultsPlot
{
    public const string LinearScale = "linear";
    public const string LogScale = "log";

    private static bool IsSelection(string? method) =>
        method is not null && method.StartsWith(Core.Specs.SweepSpec.SelectionStage + "/", StringComparison.Ordinal);

    /// <summary>The x position of a size on the chosen scale (log10 of the size on <see cref="LogScale"/>).</summary>
    public static double X(int size, string scale) => scale == LogScale ? Math.Log10(size) : size;

    /// <summary>
    /// One ScottPlot <see cref="Plot"/> per (dataset, split), with one <see cref="ScottPlot.Plottables.Scatter"/> per method
    /// (legend text = method; the legend sits beside the data, never over a band). The title names the sweep (when given)
    /// and the panel; the x label says what the line and band are and over how many cells.
    /// </summary>
    public static IReadOnlyList<(string Title, Plot Plot)> Build(IReadOnlyList<PointSummary> points, string metric, bool showDataset,
        string xScale = LinearScale, string? sweep = null)
    {
        if (xScale is not (LinearScale or LogScale))
        {
            throw new ArgumentException($"unknown x scale '{xScale}': use {LinearScale} or {LogScale}");
        }

        var panels = new List<(string, Plot)>();
        // Selection cells (results' selection/METHOD rows) mix a method's candidates in one point: not a curve to compare
        // (results --selection shows them).
        foreach (var panel in points.Where(p => p.Metric == metric && !IsSelection(p.Method))
                     .GroupBy(p => (p.Dataset, p.Split))
                     .OrderBy(g => g.Key.Dataset, StringComparer.Ordinal).ThenBy(g => g.Key.Split, StringComparer.Ordinal))
        {
            var plot = new Plot();
            var palette = new ScottPlot.Palettes.Category10();
            var methodIndex = 0;
            var sizes = new SortedSet<int>();
            foreach (var method in panel.GroupBy(p => p.Method).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var color = palette.GetColor(methodIndex++);
                var finished = method.Where(p => p.Statistics.N > 0 && p.Size is not null).OrderBy(p => p.Size).ToList();
                if (finished.Count == 0)
                {
                    continue;
                }

                var xs = finished.Select(p => X(p.Size!.Value, xScale)).ToArray();
                var means = finished.Select(p => p.Statistics.Mean).ToArray();
                var low = finished.Select(p => double.IsNaN(p.Statistics.CiLow) ? p.Statistics.Mean : p.Statistics.CiLow).ToArray();
                var high = finished.Select(p => double.IsNaN(p.Statistics.CiHigh) ? p.Statistics.Mean : p.Statistics.CiHigh).ToArray();
                sizes.UnionWith(finished.Select(p => p.Size!.Value));

                var band = plot.Add.FillY(xs, low, high);
                band.FillColor = color.WithAlpha(0.2);
                band.LineColor = Colors.Transparent;

                var line = plot.Add.Scatter(xs, means);
                line.Color = color;
                line.LineWidth = 2;
                line.MarkerSize = 7;
                line.LegendText = method.Key ?? "";
            }

            if (sizes.Count > 0)
            {
                plot.Axes.Bottom.SetTicks(sizes.Select(s => X(s, xScale)).ToArray(), sizes.Select(s => s.ToString(CultureInfo.InvariantCulture)).ToArray());
            }

            var split = panel.Key.Split ?? "";
            var title = split == "default" ? panel.Key.Dataset ?? "" : showDataset ? $"{panel.Key.Dataset} / {split}" : split;
            if (sweep is not null)
            {
                title = title.Length == 0 ? sweep : $"{sweep}: {title}";
            }

            plot.Title(title);
            plot.XLabel((xScale == LogScale ? "training examples (log scale)" : "training examples") + " · " + Caption(panel));
            plot.YLabel(metric.ToUpperInvariant());
            plot.ShowLegend(Edge.Right);
            panels.Add((title, plot));
        }

        return panels;
    }

    /// <summary>"mean ± 95% CI over n = 4 cells per point" (a range when the points have different counts).</summary>
    internal static string Caption(IEnumerable<PointSummary> points)
    {
        var counts = points.Where(p => p.Statistics.N > 0).Select(p => p.Statistics.N).ToList();
        if (counts.Count == 0)
        {
            return "no finished cells";
        }

        int low = counts.Min(), high = counts.Max();
        string n = low == high ? low.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{low}–{high}");
        return $"line: mean, band: 95% CI, over n = {n} cells per point";
    }

    /// <summary>Renders the panels to <paramref name="path"/> (.png or .svg) at exactly <paramref name="width"/> × <paramref name="height"/> pixels.</summary>
    public static void Save(IReadOnlyList<(string Title, Plot Plot)> panels, string path, int width, int height)
    {
        if (panels.Count == 0)
        {
            throw new ArgumentException("nothing to plot: no point of this metric has a finished cell yet");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(width, 100);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 100);
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".png" or ".svg"))
        {
            throw new ArgumentException($"cannot write '{path}': the file must end in .png or .svg");
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        if (extension == ".svg")
        {
            using var stream = File.Create(path);
            using (var canvas = SKSvgCanvas.Create(SKRect.Create(width, height), stream))
            {
                Draw(canvas, panels, width, height);
            } // the SVG is complete when the canvas is disposed

            return;
        }

        using var surface = SKSurface.Create(new SKImageInfo(width, height)) ?? throw new InvalidOperationException("SkiaSharp could not create a surface");
        Draw(surface.Canvas, panels, width, height);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    private static void Draw(SKCanvas canvas, IReadOnlyList<(string Title, Plot Plot)> panels, int width, int height)
    {
        canvas.Clear(SKColors.White);
        var columns = (int)Math.Ceiling(Math.Sqrt(panels.Count));
        var rows = (int)Math.Ceiling(panels.Count / (double)columns);
        var cellWidth = width / (float)columns;
        var cellHeight = height / (float)rows;
        for (var i = 0; i < panels.Count; i++)
        {
            var left = i % columns * cellWidth;
            var top = i / columns * cellHeight;
            if (panels.Count == 1)
            {
                panels[i].Plot.Render(canvas, new PixelRect(left, left + cellWidth, top + cellHeight, top));
                continue;
            }

            // Each panel on its own surface: rendering into a sub-rectangle of a shared canvas clears the whole canvas,
            // which erased the panels drawn before it.
            using var surface = SKSurface.Create(new SKImageInfo((int)Math.Ceiling(cellWidth), (int)Math.Ceiling(cellHeight)));
            panels[i].Plot.Render(surface.Canvas, new PixelRect(0, cellWidth, cellHeight, 0));
            using var image = surface.Snapshot();
            canvas.DrawImage(image, left, top);
        }
    }
}
