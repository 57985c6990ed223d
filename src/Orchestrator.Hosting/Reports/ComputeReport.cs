using System.Globalization;
using System.Text;
using System.Text.Json;
using Orchestrator.Results;

namespace Orchestrator.Hosting;

/// <summary>
/// What a sweep cost (<c>results SWEEP --compute</c>), from its stored results: per method the finished cells, how many
/// trained in a pack with other cells (<see cref="Packing.WithOthers"/>) or reused another split's training, the summed
/// cell wall time (cells of one pack overlap, so their sum exceeds the time the machine spent) and the mean per cell; for
/// the sweep the elapsed time from the first cell's start to the last cell's finish and the cells finished per hour over it.
/// </summary>
public static class ComputeReport
{
    public sealed record Row(string Method, int Cells, int Packed, int ReusedTraining, double WallSeconds)
    {
        public double MeanSeconds => Cells == 0 ? double.NaN : WallSeconds / Cells;
    }

    public static (IReadOnlyList<Row> Rows, double ElapsedSeconds, int Cells) Build(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows)
    {
        var done = rows.Where(r => r.Result is { Status: CellStatus.Succeeded }).ToList();
        var perMethod = done.GroupBy(r => r.Cell.Method, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new Row(
            g.Key,
            g.Count(),
            g.Count(r => PackingProvenance.Read(r.Result!.ProvenanceJson).WithOthers),
            g.Count(r => ReusedTraining(r.Result!.ProvenanceJson)),
            g.Sum(r => r.Result!.WallSeconds))).ToList();
        var elapsed = done.Count == 0
            ? 0
            : (done.Max(r => r.Result!.FinishedAt) - done.Min(r => r.Result!.FinishedAt - TimeSpan.FromSeconds(r.Result.WallSeconds))).TotalSeconds;
        return (perMethod, elapsed, done.Count);
    }

    public static string Render(string sweepId, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows, string format)
    {
        var (perMethod, elapsed, cells) = Build(rows);
        string F(double v, string f) => double.IsNaN(v) ? "–" : v.ToString(f, CultureInfo.InvariantCulture);
        var header = new[] { "method", "cells done", "packed", "reused training", "Σ cell wall (h)", "mean per cell (s)" };
        var body = perMethod.Select(r => new[]
        {
            r.Method, r.Cells.ToString(CultureInfo.InvariantCulture), r.Packed.ToString(CultureInfo.InvariantCulture),
            r.ReusedTraining.ToString(CultureInfo.InvariantCulture), F(r.WallSeconds / 3600, "F2"), F(r.MeanSeconds, "F1"),
        }).ToList();
        var perHour = elapsed > 0 ? cells / (elapsed / 3600) : double.NaN;
        var summary = $"{cells} cells finished in {F(elapsed / 3600, "F2")} h elapsed (first start to last finish): {F(perHour, "F1")} cells/hour; " +
                      $"Σ cell wall {F(perMethod.Sum(r => r.WallSeconds) / 3600, "F2")} h.";
        var sb = new StringBuilder();
        if (format == "markdown")
        {
            sb.Append("**").Append(sweepId).Append(": compute**\n\n");
            sb.Append("| ").Append(string.Join(" | ", header)).Append(" |\n|---|").Append(string.Concat(Enumerable.Repeat("---:|", header.Length - 1))).Append('\n');
            foreach (var row in body)
            {
                sb.Append("| ").Append(string.Join(" | ", row)).Append(" |\n");
            }

            sb.Append('\n').Append(summary).Append('\n');
            return sb.ToString();
        }

        var widths = header.Select((h, i) => Math.Max(h.Length, body.Count == 0 ? 0 : body.Max(r => r[i].Length))).ToArray();
        sb.Append(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i])))).Append('\n');
        foreach (var row in body)
        {
            sb.Append(string.Join("  ", row.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i])))).Append('\n');
        }

        sb.Append(summary).Append('\n');
        return sb.ToString();
    }

    private static bool ReusedTraining(string provenanceJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(provenanceJson);
            return doc.RootElement.TryGetProperty("reused_training", out var r) && r.ValueKind == JsonValueKind.True;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
