using System.Globalization;
using Orchestrator.Abstractions;
using Orchestrator.Results;
using Spectre.Console;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// Live progress of a sweep per method: cells done, running, failed, with a bar and an ETA per method (Spectre.Console's
/// remaining-time column, from each bar's observed speed). The cell → method map comes from the database once; cell states
/// from the queue on every poll (cells absent from the queue were done before the sweep was submitted). Without an
/// interactive terminal it prints a line whenever the counts change.
/// </summary>
internal static class ProgressDisplay
{
    /// <summary>Per-method counts.</summary>
    internal sealed record MethodProgress(string Method, int Total, int Done, int Running, int Failed, int Blocked = 0)
    {
        public string Describe() =>
            $"{Method}: {Done}/{Total} done, {Running} running, {Failed} failed" + (Blocked > 0 ? $", {Blocked} blocked" : "");
    }

    public static async Task<SweepProgress> WatchAsync(IGrainFactory grains, IResultStore store, string sweepId, TimeSpan poll, CancellationToken ct)
    {
        var cells = await store.GetSweepCellsAsync(sweepId, ct);
        var methods = cells.ToDictionary(c => c.Cell.CellKey, c => c.Cell.Method, StringComparer.Ordinal);
        var doneBefore = cells.Where(c => c.Result is { Status: CellStatus.Succeeded }).Select(c => c.Cell.CellKey).ToHashSet(StringComparer.Ordinal);
        var sweep = grains.GetGrain<ISweepGrain>(sweepId);

        async Task<(SweepProgress, IReadOnlyList<MethodProgress>)> PollAsync()
        {
            var progress = await sweep.GetProgressAsync();
            var states = (await sweep.GetCellsAsync()).ToDictionary(c => c.CellKey, c => c.State, StringComparer.Ordinal);
            return (progress, Count(methods, states, doneBefore));
        }

        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            var last = "";
            while (true)
            {
                var (progress, perMethod) = await PollAsync();
                var line = "  progress: " + string.Join("; ", perMethod.Select(m => m.Describe()));
                if (line != last)
                {
                    Console.WriteLine(line);
                    last = line;
                }

                if (progress.IsComplete || methods.Count == 0)
                {
                    return progress;
                }

                await Task.Delay(poll, ct);
            }
        }

        SweepProgress? result = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                while (true)
                {
                    var (progress, perMethod) = await PollAsync();
                    foreach (var m in perMethod)
                    {
                        if (!tasks.TryGetValue(m.Method, out var task))
                        {
                            task = ctx.AddTask(Markup.Escape(m.Describe()), maxValue: Math.Max(1, m.Total));
                            tasks[m.Method] = task;
                        }

                        task.MaxValue = Math.Max(1, m.Total);
                        task.Value = m.Done + m.Failed + m.Blocked;
                        task.Description = Markup.Escape(m.Describe());
                    }

                    if (progress.IsComplete || methods.Count == 0)
                    {
                        result = progress;
                        return;
                    }

                    await Task.Delay(poll, ct);
                }
            });
        return result!;
    }

    /// <summary>Per method: the queue's state for queued cells; cells not in the queue count as done if they were done before.</summary>
    internal static IReadOnlyList<MethodProgress> Count(IReadOnlyDictionary<string, string> methods, IReadOnlyDictionary<string, string> states,
        IReadOnlySet<string> doneBefore) =>
        methods.GroupBy(m => m.Value, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                int done = 0, running = 0, failed = 0, blocked = 0;
                foreach (var (key, _) in g)
                {
                    var state = states.TryGetValue(key, out var s) ? s : doneBefore.Contains(key) ? "done" : "pending";
                    switch (state)
                    {
                        case "done": done++; break;
                        case "leased": running++; break;
                        case "failed": failed++; break;
                        case "blocked": blocked++; break;
                    }
                }

                return new MethodProgress(g.Key, g.Count(), done, running, failed, blocked);
            })
            .ToList();
}
