using System.CommandLine;
using System.Globalization;
using Orchestrator.Core.Curves;
using Orchestrator.Hosting;
using Orchestrator.Results;
using ScottPlot;

namespace Orchestrator.Cli.Commands;

/// <summary><c>curves SWEEP CELL [--out fig.png|fig.svg]</c>: a cell's stored training curve, as a table or a chart.</summary>
internal static class CurveCommands
{
    public static void Register(RootCommand root, Option<string> dataDir, Option<bool> verbose)
    {
        var shared = new SessionOptions(root, dataDir, verbose);
        var sweepArg = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        var cellArg = new Argument<string>("CELL") { Description = "The cell's key, or a unique prefix of it (at least 6 characters; `export` lists keys)" };
        var outOption = new Option<string?>("--out") { Description = "Write a chart (.png or .svg) instead of printing the table" };
        var width = new Option<int>("--width") { Description = "Image width in pixels", DefaultValueFactory = _ => 900 };
        var height = new Option<int>("--height") { Description = "Image height in pixels", DefaultValueFactory = _ => 550 };
        shared.Add("curves", "A cell's training curve: training loss per step (subsampled), dev loss at each evaluation, and the step it kept.",
                sweepArg, cellArg, outOption, width, height)
            .SetAction((pr, ct) => SweepCommands.Guard(async () =>
            {
                await using var session = await shared.OpenAsync(pr, train: false, slots: 1, ct);
                var sweep = await SweepCommands.FindAsync(session, pr.GetValue(sweepArg)!, ct);
                var (cell, result) = await CellLookup.FindAsync(session.Store, sweep.SweepId, pr.GetValue(cellArg)!, ct);
                var label = $"{cell.Method} size {cell.Size} subsample {cell.Subsample} seed {cell.Seed} ({cell.Split})";
                var json = await session.Store.GetCurveAsync(cell.CellKey, ct);
                if (json is null)
                {
                    throw new ArgumentException(result is { Status: CellStatus.Succeeded }
                        ? $"cell {label} ({cell.CellKey[..12]}) has no stored training curve (stored before curves were recorded, or simulated)"
                        : $"cell {label} ({cell.CellKey[..12]}) has no successful result yet, so no training curve");
                }

                var curve = TrainingCurve.Parse(json);
                if (pr.GetValue(outOption) is { } path)
                {
                    ResultsPlot.Save([(label, Chart(curve, label))], path, pr.GetValue(width), pr.GetValue(height));
                    Console.WriteLine($"wrote {path} ({curve.Train.Count} training and {curve.Dev.Count} dev points, kept step {curve.KeptStep})");
                    return 0;
                }

                Console.Write(Table(curve, $"{label} ({cell.CellKey[..12]})"));
                return 0;
            }));
    }

    /// <summary>One row per stored step: training loss (where sampled), dev loss (where evaluated), and a mark on the kept step.</summary>
    internal static string Table(TrainingCurve curve, string title)
    {
        var train = curve.Train.ToDictionary(p => p.Step, p => p.Loss);
        var dev = curve.Dev.GroupBy(p => p.Step).ToDictionary(g => g.Key, g => g.Last().Loss);
        var text = new System.Text.StringBuilder();
        text.AppendLine($"{title}: {curve.Steps} steps, kept step {curve.KeptStep}");
        text.AppendLine($"{"step",7}  {"train loss",12}  {"dev loss",12}");
        foreach (var step in train.Keys.Union(dev.Keys).Order())
        {
            string F(Dictionary<int, double> d) => d.TryGetValue(step, out var v) ? (double.IsNaN(v) ? "–" : v.ToString("F4", CultureInfo.InvariantCulture)) : "";
            text.AppendLine($"{step,7}  {F(train),12}  {F(dev),12}{(step == curve.KeptStep ? "  ← kept" : "")}");
        }

        return text.ToString();
    }

    /// <summary>Training loss as a line, dev loss as a line with markers, the kept step as a vertical dashed line.</summary>
    internal static Plot Chart(TrainingCurve curve, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        if (curve.Train.Count > 0)
        {
            var train = plot.Add.Scatter(curve.Train.Select(p => (double)p.Step).ToArray(), curve.Train.Select(p => p.Loss).ToArray());
            train.Color = palette.GetColor(0);
            train.LineWidth = 1.5f;
            train.MarkerSize = 0;
            train.LegendText = "training loss";
        }

        if (curve.Dev.Count > 0)
        {
            var dev = plot.Add.Scatter(curve.Dev.Select(p => (double)p.Step).ToArray(), curve.Dev.Select(p => p.Loss).ToArray());
            dev.Color = palette.GetColor(1);
            dev.LineWidth = 2;
            dev.MarkerSize = 7;
            dev.LegendText = "dev loss";
        }

        var kept = plot.Add.VerticalLine(curve.KeptStep);
        kept.Color = Colors.Gray;
        kept.LinePattern = LinePattern.Dashed;
        kept.LegendText = $"kept step {curve.KeptStep}";
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("loss");
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }
}
