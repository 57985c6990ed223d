using System.Text.Json.Serialization;
using Orchestrator.Abstractions;
using Orchestrator.Results;
using Spectre.Console;

namespace Orchestrator.Cli.Commands;

/// <summary>A sweep's state for <c>status</c>: counts from the queue, each cell from the database with the queue's view on top.</summary>
internal sealed record StatusReport(
    [property: JsonPropertyName("sweep_id")] string SweepId,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("total")] int Total,
    [property: JsonPropertyName("pending")] int Pending,
    [property: JsonPropertyName("leased")] int Leased,
    [property: JsonPropertyName("done")] int Done,
    [property: JsonPropertyName("failed")] int Failed,
    [property: JsonPropertyName("complete")] bool Complete,
    [property: JsonPropertyName("cells")] IReadOnlyList<StatusReport.Cell> Cells)
{
    public sealed record Cell(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("method")] string Method,
        [property: JsonPropertyName("size")] int Size,
        [property: JsonPropertyName("subsample")] int Subsample,
        [property: JsonPropertyName("seed")] int Seed,
        [property: JsonPropertyName("split")] string Split,
        [property: JsonPropertyName("state")] string State,
        [property: JsonPropertyName("attempts")] int Attempts,
        [property: JsonPropertyName("worker")] string? Worker,
        [property: JsonPropertyName("error")] string? Error);

    public static async Task<StatusReport> BuildAsync(Session session, SweepRecord sweep, CancellationToken ct)
    {
        var grain = session.Grains.GetGrain<ISweepGrain>(sweep.SweepId);
        var queued = (await grain.GetCellsAsync()).ToDictionary(c => c.CellKey, StringComparer.Ordinal);
        var stored = await session.Store.GetSweepCellsAsync(sweep.SweepId, ct);
        var cells = stored.Select(c =>
        {
            queued.TryGetValue(c.Cell.CellKey, out var q);
            var state = c.Result?.Status == CellStatus.Succeeded ? "done"
                : q?.State switch { "leased" => "leased", "failed" => "failed", "pending" => "pending", "done" => "done", _ => null }
                  ?? (c.Result?.Status == CellStatus.Failed ? "failed" : sweep.Status == SweepStatus.Cancelled ? "cancelled" : "pending");
            var attempts = Math.Max(q?.Attempts ?? 0, c.Result?.Attempt ?? 0);
            var error = state is "failed" or "pending" ? q?.LastError ?? (c.Result?.Status == CellStatus.Failed ? c.Result.Error : null) : null;
            return new Cell(c.Cell.CellKey, c.Cell.Method, c.Cell.Size, c.Cell.Subsample, c.Cell.Seed, c.Cell.Split, state, attempts,
                q?.WorkerId, error);
        }).ToList();

        int Count(string state) => cells.Count(c => c.State == state);
        var failed = Count("failed");
        var done = Count("done");
        return new StatusReport(sweep.SweepId, sweep.Name, sweep.Status, cells.Count, Count("pending"), Count("leased"), done, failed,
            cells.Count > 0 && done + failed == cells.Count, cells);
    }

    public void Print()
    {
        Console.WriteLine($"Sweep {SweepId} ({Name}, {Status}): {Total} cells — {Done} done, {Leased} running, {Pending} pending, {Failed} failed" +
                          (Complete ? " — complete" : ""));
        var open = Cells.Where(c => c.State != "done").ToList();
        if (open.Count == 0)
        {
            return;
        }

        var table = new Table().AddColumn("cell").AddColumn("state").AddColumn(new TableColumn("attempts").RightAligned()).AddColumn("worker").AddColumn("reason");
        foreach (var c in open)
        {
            var reason = c.Error?.Split('\n')[0] ?? "";
            table.AddRow(Markup.Escape($"{c.Method} n={c.Size} sub{c.Subsample} seed{c.Seed}" + (c.Split == "default" ? "" : $" [{c.Split}]")),
                c.State, c.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(c.Worker ?? ""), Markup.Escape(reason));
        }

        AnsiConsole.Write(table);
    }
}
