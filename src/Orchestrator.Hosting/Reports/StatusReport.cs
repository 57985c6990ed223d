using System.Text.Json.Serialization;
using Orchestrator.Abstractions;
using Orchestrator.Results;
using Spectre.Console;

namespace Orchestrator.Hosting;

/// <summary>A sweep's state for <c>status</c>: counts from the queue, each cell from the database with the queue's view on top.</summary>
public sealed record StatusReport(
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
    /// <summary>Cells of a later stage whose dependencies have not all succeeded yet.</summary>
    [JsonPropertyName("waiting")]
    public int Waiting => Cells.Count(c => c.State == "waiting");

    /// <summary>Cells with a failed dependency: they run after <c>rerun-failed</c> fixes it.</summary>
    [JsonPropertyName("blocked")]
    public int Blocked => Cells.Count(c => c.State == "blocked");

    /// <summary>
    /// With <c>selection:</c>, the cells of the chosen grids that join once their selection has chosen (one candidate's grid per method
    /// still choosing); the sweep is not complete while any waits.
    /// </summary>
    [JsonPropertyName("awaiting_choice")]
    public int AwaitingChoice { get; init; }

    /// <summary>Per stage (in the order the cells run), its cells by state, and the stages it needs; empty for a sweep without stages.</summary>
    [JsonPropertyName("stages")]
    public IReadOnlyList<StageStatus> Stages { get; init; } = [];

    /// <summary>For a sweep with <c>selection:</c>, one line per method (per size): chosen, awaiting selection, or blocked; empty otherwise.</summary>
    [JsonPropertyName("selection")]
    public IReadOnlyList<string> Selection { get; init; } = [];

    public sealed record StageStatus(
        [property: JsonPropertyName("stage")] string Stage,
        [property: JsonPropertyName("needs")] IReadOnlyList<string> Needs,
        [property: JsonPropertyName("total")] int Total,
        [property: JsonPropertyName("counts")] IReadOnlyDictionary<string, int> Counts);

    public sealed record Cell(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("stage")] string Stage,
        [property: JsonPropertyName("method")] string Method,
        [property: JsonPropertyName("size")] int Size,
        [property: JsonPropertyName("subsample")] int Subsample,
        [property: JsonPropertyName("seed")] int Seed,
        [property: JsonPropertyName("split")] string Split,
        [property: JsonPropertyName("state")] string State,
        [property: JsonPropertyName("attempts")] int Attempts,
        [property: JsonPropertyName("worker")] string? Worker,
        [property: JsonPropertyName("error")] string? Error);

    public static async Task<StatusReport> BuildAsync(IGrainFactory grains, IResultStore store, SweepRecord sweep, CancellationToken ct)
    {
        var queue = await grains.GetGrain<ISweepGrain>(sweep.SweepId).GetCellsAsync();
        var rows = await store.GetSweepCellsAsync(sweep.SweepId, ct);
        var report = Build(sweep, queue, rows);
        SelectionReport? selection;
        var awaiting = 0;
        try
        {
            var choices = await store.GetSelectionsAsync(sweep.SweepId, ct);
            var limits = await Grains.SweepSelection.AttemptLimitsAsync(store, sweep.SweepId, ct);
            selection = SelectionReports.Report(sweep, rows, choices, limits);
            if (selection is not null && await store.GetCandidateCellsAsync(sweep.SweepId, ct) is { Count: > 0 } candidates)
            {
                // The chosen grids not queued yet (as the sweep grain counts them): the sweep is not complete while any waits.
                awaiting = Grains.SweepSelection.Waiting(Grains.SweepSelection.Decide(sweep, rows, limits), choices, candidates);
            }
        }
        catch (Core.Specs.SpecValidationException)
        {
            selection = null; // a spec this version no longer reads: the counts above still hold
        }

        if (awaiting > 0)
        {
            report = report with { AwaitingChoice = awaiting, Complete = false, Status = sweep.Status };
        }

        return selection is null ? report : report with { Selection = selection.Lines() };
    }

    /// <summary>The report from the queue's cells and the stored cells (for callers that need the stored rows too).</summary>
    public static StatusReport Build(SweepRecord sweep, IReadOnlyList<CellState> queue, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> stored)
    {
        var queued = queue.ToDictionary(c => c.CellKey, StringComparer.Ordinal);
        var definitions = stored.ToDictionary(c => c.Cell.CellKey, c => TryParse(c.Cell.CellJson), StringComparer.Ordinal);
        var cells = stored.Select(c =>
        {
            queued.TryGetValue(c.Cell.CellKey, out var q);
            var state = c.Result?.Status == CellStatus.Succeeded ? "done"
                : q?.State switch
                  {
                      "leased" => "leased", "failed" => "failed", "pending" => "pending", "done" => "done", "waiting" => "waiting", "blocked" => "blocked",
                      _ => null,
                  }
                  ?? (c.Result?.Status == CellStatus.Failed ? "failed" : sweep.Status == SweepStatus.Cancelled ? "cancelled" : "pending");
            var attempts = Math.Max(q?.Attempts ?? 0, c.Result?.Attempt ?? 0);
            var error = state is "failed" or "pending" or "blocked"
                ? q?.LastError ?? (c.Result?.Status == CellStatus.Failed ? c.Result.Error : null)
                : null;
            var stage = definitions[c.Cell.CellKey]?.Stage ?? Core.Specs.SweepSpec.MainStage;
            return new Cell(c.Cell.CellKey, stage, c.Cell.Method, c.Cell.Size, c.Cell.Subsample, c.Cell.Seed, c.Cell.Split, state, attempts,
                q?.WorkerId, error);
        }).ToList();

        int Count(string state) => cells.Count(c => c.State == state);
        var failed = Count("failed");
        var done = Count("done");
        var stages = cells.Any(c => c.Stage != Core.Specs.SweepSpec.MainStage) ? StageGraph(cells, definitions) : [];
        var complete = cells.Count > 0 && done + failed + Count("blocked") == cells.Count;
        return new StatusReport(sweep.SweepId, sweep.Name, ShownStatus(sweep.Status, complete, done == cells.Count), cells.Count, Count("pending"),
            Count("leased"), done, failed, complete, cells)
        {
            Stages = stages,
        };
    }

    /// <summary>
    /// The database keeps a sweep <c>active</c> until it is cancelled (a later extend or resume adds work to it); a sweep with
    /// nothing left to run is shown as <c>completed</c> (every cell done) or <c>finished</c> (some failed or blocked).
    /// </summary>
    public static string ShownStatus(string stored, bool complete, bool allDone) =>
        stored == SweepStatus.Active && complete ? (allDone ? "completed" : "finished") : stored;

    private static Core.Cells.CellDefinition? TryParse(string json)
    {
        try
        {
            return Core.Cells.CellDefinition.FromJson(json);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>The stage graph: each stage's counts by state and the stages its cells need, earlier stages first.</summary>
    private static List<StageStatus> StageGraph(IReadOnlyList<Cell> cells, IReadOnlyDictionary<string, Core.Cells.CellDefinition?> definitions)
    {
        var stageOf = cells.ToDictionary(c => c.Key, c => c.Stage, StringComparer.Ordinal);
        return cells.GroupBy(c => c.Stage, StringComparer.Ordinal)
            .Select(g =>
            {
                var needs = g.SelectMany(c => definitions[c.Key]?.Dependencies ?? [])
                    .Select(k => stageOf.GetValueOrDefault(k, "?"))
                    .Distinct(StringComparer.Ordinal)
                    .ToList();
                var counts = g.GroupBy(c => c.State, StringComparer.Ordinal).ToDictionary(s => s.Key, s => s.Count(), StringComparer.Ordinal);
                return new StageStatus(g.Key, needs, g.Count(), counts);
            })
            .OrderBy(s => s.Stage == Core.Specs.SweepSpec.MainStage)
            .ToList();
    }

    public void Print()
    {
        Console.WriteLine($"Sweep {SweepId} ({Name}, {Status}): {Total} cells — {Done} done, {Leased} running, {Pending} pending, {Failed} failed" +
                          (Waiting + Blocked > 0 ? $", {Waiting} waiting, {Blocked} blocked" : "") +
                          (AwaitingChoice > 0 ? $"; {AwaitingChoice} more once the selection has chosen (the chosen grids)" : "") +
                          (Complete ? " — complete" : ""));
        if (Stages.Count > 0)
        {
            Console.WriteLine("Stages (each waits for the stages it needs):");
            foreach (var stage in Stages)
            {
                var counts = string.Join(", ", new[] { "done", "leased", "pending", "waiting", "blocked", "failed" }
                    .Where(stage.Counts.ContainsKey)
                    .Select(k => $"{stage.Counts[k]} {(k == "leased" ? "running" : k)}"));
                var needs = stage.Needs.Count == 0 ? "" : $"  ← needs {string.Join(", ", stage.Needs)}";
                Console.WriteLine($"  {stage.Stage}: {stage.Total} cells — {counts}{needs}");
            }
        }

        foreach (var line in Selection)
        {
            Console.WriteLine("selection: " + line);
        }

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
