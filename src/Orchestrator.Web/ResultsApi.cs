using System.Globalization;
using System.Collections.Concurrent;
using System.Text.Json;
using Orchestrator.Abstractions;
using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Curves;
using Orchestrator.Data;
using Orchestrator.Evaluation;
using Orchestrator.Grains;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.Web;

/// <summary>
/// The numbers behind the page, from the same results store, grains and report code as the CLI: <see cref="StatusReport"/>
/// (<c>status</c>), <see cref="ResultsReport"/> (<c>results</c>, <c>--compare</c>, the seen − unseen gap), <see cref="ComputeReport"/>
/// (<c>results --compute</c>), the results grain's aggregate (<c>plot</c>) and the stored training curves (<c>curves</c>).
/// </summary>
public sealed class ResultsApi(IGrainFactory grains, IResultStore store, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public IResultStore Store => store;

    /// <exception cref="KeyNotFoundException">No sweep with that id or name.</exception>
    public async Task<SweepRecord> FindSweepAsync(string idOrName, CancellationToken ct) =>
        await store.FindSweepAsync(idOrName, ct) ?? throw new KeyNotFoundException($"no sweep with id or name '{idOrName}'");

    // ---------------------------------------------------------------- sweeps and progress

    public async Task<IReadOnlyList<SweepSummary>> SweepsAsync(CancellationToken ct)
    {
        var list = new List<SweepSummary>();
        foreach (var sweep in (await store.GetSweepsAsync(null, ct)).Reverse())
        {
            var (report, stored) = await StatusAsync(sweep, ct);
            list.Add(Summary(sweep, report, stored));
        }

        return list;
    }

    /// <summary>
    /// The sweep's stored cells (without their outputs) as of the results fingerprint: read again only when a result was written,
    /// a score rescored, a cell added or the sweep's status changed, so that a 100,000-cell sweep is read once, not on every request.
    /// </summary>
    private async Task<StoredSnapshot> StoredAsync(SweepRecord sweep, CancellationToken ct, DateTimeOffset? versionNotBefore = null)
    {
        var v = await VersionAsync(sweep.SweepId, versionNotBefore);
        var version = string.Create(CultureInfo.InvariantCulture, $"{sweep.CellCount}:{sweep.Status}:{v.Results}:{v.AttemptSum}:{v.LastFinishedAt}:{v.Metrics}:{v.MetricSum:R}");
        if (_stored.TryGetValue(sweep.SweepId, out var cached) && cached.Version == version)
        {
            return cached;
        }

        // One read per version, shared by every request that asks for it meanwhile: a 100,000-cell sweep takes seconds to read,
        // and while its cells finish every open page asks again after each result. Not the caller's token, as it is shared.
        Task<StoredSnapshot> read;
        lock (_reads)
        {
            if (!_reads.TryGetValue(sweep.SweepId, out var pending) || pending.Version != version || pending.Read.IsFaulted || pending.Read.IsCanceled)
            {
                pending = (version, ReadStoredAsync(sweep.SweepId, version));
                _reads[sweep.SweepId] = pending;
            }

            read = pending.Read;
        }

        return await read.WaitAsync(ct);
    }

    private async Task<StoredSnapshot> ReadStoredAsync(string sweepId, string version)
    {
        var fresh = new StoredSnapshot(version, await store.GetSweepCellsAsync(sweepId, withOutputs: false, CancellationToken.None));
        _stored[sweepId] = fresh;
        return fresh;
    }

    private readonly Dictionary<string, (string Version, Task<StoredSnapshot> Read)> _reads = new(StringComparer.Ordinal);

    /// <summary>
    /// <c>status</c>'s report: rebuilt when the stored results or the queue's counts change (the queue's per-cell list is read only
    /// then), else the last one.
    /// </summary>
    private async Task<(StatusReport Report, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> Stored)> StatusAsync(SweepRecord sweep, CancellationToken ct)
    {
        var stored = await StoredAsync(sweep, ct);
        var sweepGrain = grains.GetGrain<ISweepGrain>(sweep.SweepId);
        var progress = await sweepGrain.GetProgressAsync();
        if (progress.Done > stored.Succeeded)
        {
            // A worker writes a cell's result before it completes the lease, so a queue ahead of the snapshot means that the
            // fingerprint (reused for up to a second) was read before that result: read it again, once for each count the queue is
            // seen at, rather than show a done cell without its scores.
            var now = _time.GetUtcNow();
            var seen = _doneSeen.AddOrUpdate(sweep.SweepId, _ => (progress.Done, now), (_, old) => old.Done == progress.Done ? old : (progress.Done, now));
            stored = await StoredAsync(sweep, ct, versionNotBefore: seen.At);
        }

        var key = $"{stored.Version}|{progress}";
        if (_status.TryGetValue(sweep.SweepId, out var cached) && cached.Key == key && ReferenceEquals(cached.Stored, stored))
        {
            return (cached.Report, stored.Cells);
        }

        var report = StatusReport.Build(sweep, await sweepGrain.GetCellsAsync(), stored.Cells);
        _status[sweep.SweepId] = new StatusSnapshot(key, stored, report);
        return (report, stored.Cells);
    }

    /// <summary>
    /// The results fingerprint, read at most once a second per sweep however many pages and streams ask (on a 100,000-cell
    /// SQLite sweep the query takes a few hundred milliseconds); concurrent requests share one read.
    /// </summary>
    /// <param name="notBefore">When set, a read started at or after this time is reused, however old, and none started before.</param>
    private Task<ResultsVersion> VersionAsync(string sweepId, DateTimeOffset? notBefore = null)
    {
        var now = _time.GetUtcNow();
        if (_versions.TryGetValue(sweepId, out var recent) && (notBefore is { } since ? recent.At >= since : now - recent.At < VersionReuse)
            && !recent.Read.IsFaulted && !recent.Read.IsCanceled)
        {
            return recent.Read;
        }

        // Not the caller's token: other requests may share this read after the caller went away.
        var read = store.GetResultsVersionAsync(sweepId, CancellationToken.None);
        _versions[sweepId] = (read, now);
        return read;
    }

    private static readonly TimeSpan VersionReuse = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, (Task<ResultsVersion> Read, DateTimeOffset At)> _versions = new(StringComparer.Ordinal);

    private sealed class StoredSnapshot(string version, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> cells)
    {
        public string Version { get; } = version;

        public IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> Cells { get; } = cells;

        /// <summary>The cells with a stored success (the queue counts no more cells done than this once the snapshot is current).</summary>
        public int Succeeded { get; } = cells.Count(c => c.Result?.Status == CellStatus.Succeeded);

        /// <summary>The compute table of these results (built on first request).</summary>
        public ComputeView? Compute { get; set; }
    }

    private sealed record StatusSnapshot(string Key, StoredSnapshot Stored, StatusReport Report);

    private readonly ConcurrentDictionary<string, StoredSnapshot> _stored = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StatusSnapshot> _status = new(StringComparer.Ordinal);

    /// <summary>Per sweep, the queue's last done count ahead of the snapshot, and when it was first seen.</summary>
    private readonly ConcurrentDictionary<string, (int Done, DateTimeOffset At)> _doneSeen = new(StringComparer.Ordinal);

    /// <summary>
    /// Elapsed: from submission to the last finish (complete) or to now. ETA: the cells still to run times the time per cell
    /// finished since submission (none until one has finished).
    /// </summary>
    private SweepSummary Summary(SweepRecord sweep, StatusReport report, IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> stored)
    {
        var finishedSince = stored.Where(c => c.Result is not null && c.Result.FinishedAt >= sweep.SubmittedAt).Select(c => c.Result!.FinishedAt).ToList();
        var end = report.Complete && finishedSince.Count > 0 ? finishedSince.Max() : report.Complete ? sweep.SubmittedAt : _time.GetUtcNow();
        var elapsed = Math.Max(0, (end - sweep.SubmittedAt).TotalSeconds);
        var remaining = report.Total - report.Done - report.Failed - report.Blocked;
        double? eta = report.Complete || remaining <= 0 ? 0 : finishedSince.Count > 0 && sweep.Status == SweepStatus.Active ? remaining * elapsed / finishedSince.Count : null;
        return new SweepSummary(sweep.SweepId, sweep.Name, sweep.Status, sweep.SubmittedAt, report.Total, report.Done, report.Leased, report.Pending,
            report.Failed, report.Blocked, report.Waiting, report.Complete, elapsed, eta);
    }

    public async Task<SweepProgressView> ProgressAsync(SweepRecord sweep, CancellationToken ct)
    {
        var (report, stored) = await StatusAsync(sweep, ct);
        var methods = report.Cells
            .GroupBy(c => (c.Stage, c.Method))
            .OrderBy(g => g.Key.Stage == Core.Specs.SweepSpec.MainStage).ThenBy(g => g.Key.Stage, StringComparer.Ordinal).ThenBy(g => g.Key.Method, StringComparer.Ordinal)
            .Select(g => new MethodProgressRow(g.Key.Stage, g.Key.Method, g.Count(),
                g.GroupBy(c => c.State, StringComparer.Ordinal).ToDictionary(s => s.Key, s => s.Count(), StringComparer.Ordinal)))
            .ToList();
        var problemCells = report.Cells.Where(c => c.State is "failed" or "blocked").ToList();
        var problems = problemCells.Take(MaxProblemsShown)
            .Select(c => new ProblemCell(c.Key, Label(c), c.State, c.Attempts, c.Error ?? (c.State == "blocked" ? "a cell it needs failed" : null)))
            .ToList();
        var stages = report.Stages.Select(s => new StatusStage(s.Stage, s.Needs, s.Total, s.Counts)).ToList();
        return new SweepProgressView(Summary(sweep, report, stored), methods, stages, problems, sweep.Metrics) { ProblemsTotal = problemCells.Count };
    }

    /// <summary>The failed and blocked cells listed with the progress (the rest are in the cells list, filtered by state).</summary>
    public const int MaxProblemsShown = 100;

    private static string Label(StatusReport.Cell c) =>
        $"{c.Method} n={c.Size} sub{c.Subsample} seed{c.Seed}" + (c.Split == "default" ? "" : $" [{c.Split}]");

    /// <summary>A page of the sweep's cells (filtered by state and method), with their scores.</summary>
    public async Task<CellsPage> CellsAsync(SweepRecord sweep, int offset, int limit, string? state, string? method, CancellationToken ct)
    {
        var (report, stored) = await StatusAsync(sweep, ct);
        var results = stored.ToDictionary(c => c.Cell.CellKey, c => c.Result, StringComparer.Ordinal);
        var chosen = report.Cells
            .Where(c => state is null || c.State == state)
            .Where(c => method is null || c.Method == method)
            .ToList();
        var page = chosen.Skip(offset).Take(limit).Select(c => new CellRow(c.Key, c.Stage, c.Method, c.Size, c.Subsample, c.Seed, c.Split, c.State,
            c.Attempts, c.Worker ?? results[c.Key]?.WorkerId, c.Error, Metrics(results[c.Key]))).ToList();
        return new CellsPage(chosen.Count, offset, limit, page);
    }

    private static IReadOnlyDictionary<string, double?> Metrics(CellResultRecord? result) =>
        (result?.Metrics ?? new Dictionary<string, double>()).OrderBy(m => m.Key, StringComparer.Ordinal)
            .ToDictionary(m => m.Key, m => N(m.Value), StringComparer.Ordinal);

    /// <summary>The SSE payload: the queue's counts (cheap) and the results fingerprint.</summary>
    public async Task<ProgressEvent> ProgressEventAsync(SweepRecord sweep, CancellationToken ct)
    {
        var queue = await grains.GetGrain<ISweepGrain>(sweep.SweepId).GetProgressAsync();
        var version = await VersionAsync(sweep.SweepId);
        return new ProgressEvent(sweep.SweepId, queue.Total, queue.Done, queue.Leased, queue.Pending, queue.Failed, queue.Blocked, queue.Waiting,
            queue.IsComplete, $"{version.Results}:{version.AttemptSum}:{version.LastFinishedAt}");
    }

    // ---------------------------------------------------------------- results

    /// <summary>The report <c>results</c> prints (same builder; <paramref name="compare"/> as <c>--compare A B</c>).</summary>
    public async Task<ResultsReport> ReportAsync(SweepRecord sweep, string? metric, string? by, (string A, string B)? compare) =>
        await ResultsReport.BuildAsync(grains, sweep, metric, PointAggregation.ParseKeys(by ?? "dataset,split,method,size"), compare);

    /// <summary>The plot's series: what <c>plot</c> draws (metric by size, one line per method, one panel per dataset/split).</summary>
    public async Task<PlotSeries> PlotAsync(SweepRecord sweep, string? metric)
    {
        var results = await grains.GetGrain<IResultsGrain>(sweep.SweepId).GetAsync();
        var chosen = metric ?? ResultsReport.PrimaryMetric(sweep, results);
        var points = PointAggregation.Summarize(results.Points.Select(p => p.ToSums()), PointKeys.All, chosen);
        if (points.Count == 0 && results.Points.Count > 0)
        {
            throw new ArgumentException($"sweep {sweep.Name} has no metric '{chosen}' (it has: {string.Join(", ", results.Points.Select(p => p.Metric).Distinct())})");
        }

        var showDataset = points.Select(p => p.Dataset).Distinct().Count() > 1;
        var panels = points
            .GroupBy(p => (p.Dataset, p.Split))
            .OrderBy(g => g.Key.Dataset, StringComparer.Ordinal).ThenBy(g => g.Key.Split, StringComparer.Ordinal)
            .Select(g =>
            {
                var split = g.Key.Split ?? "";
                var title = split == "default" ? g.Key.Dataset ?? "" : showDataset ? $"{g.Key.Dataset} / {split}" : split;
                var lines = g.GroupBy(p => p.Method ?? "").OrderBy(m => m.Key, StringComparer.Ordinal)
                    .Select(m => new PlotLine(m.Key, m.Where(p => p.Size is not null).OrderBy(p => p.Size).Select(p => new PlotPoint(p.Size!.Value,
                        p.Statistics.N, p.Expected, p.Complete, N(p.Statistics.Mean), N(p.Statistics.CiLow), N(p.Statistics.CiHigh))).ToList()))
                    .ToList();
                return new PlotPanel(g.Key.Dataset, g.Key.Split, title, lines);
            })
            .ToList();
        return new PlotSeries(chosen, results.Points.Select(p => p.Metric).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(), panels);
    }

    public async Task<ComputeView> ComputeAsync(SweepRecord sweep, CancellationToken ct)
    {
        var stored = await StoredAsync(sweep, ct);
        if (stored.Compute is { } cached)
        {
            return cached;
        }

        var (rows, elapsed, cells) = ComputeReport.Build(stored.Cells);
        return stored.Compute = new ComputeView(rows.Select(r => new ComputeRow(r.Method, r.Cells, r.Packed, r.ReusedTraining, r.WallSeconds, N(r.MeanSeconds))).ToList(),
            elapsed, cells, elapsed > 0 ? cells / (elapsed / 3600) : null);
    }

    /// <summary><c>results --selection</c>: the candidates' dev losses and the choice per method (no scopes for a sweep without <c>selection:</c>).</summary>
    public async Task<SelectionReport> SelectionAsync(SweepRecord sweep, CancellationToken ct)
    {
        var none = new SelectionReport(sweep.SweepId, Core.Specs.SelectionSpec.ByDevLoss, []);
        try
        {
            return SelectionReports.Report(sweep, (await StoredAsync(sweep, ct)).Cells, await store.GetSelectionsAsync(sweep.SweepId, ct),
                await Grains.SweepSelection.AttemptLimitsAsync(store, sweep.SweepId, ct)) ?? none;
        }
        catch (Core.Specs.SpecValidationException)
        {
            // A stored spec this version no longer reads: its selection cannot be recomputed, and its results page still shows the rest.
            return none;
        }
    }

    // ---------------------------------------------------------------- one cell

    /// <summary>A cell by key or unique prefix: definition, result, provenance, curve, outputs beside references with per-segment scores.</summary>
    public async Task<CellView> CellAsync(SweepRecord sweep, string key, CancellationToken ct)
    {
        var (cell, result) = Find((await StoredAsync(sweep, ct)).Cells, sweep.SweepId, key);
        if (result is not null)
        {
            result = result with { Outputs = await store.GetOutputsAsync(cell.CellKey, ct) };
        }

        var queue = await grains.GetGrain<ISweepGrain>(sweep.SweepId).GetCellsAsync();
        var state = StatusReport.Build(sweep, queue.Where(q => q.CellKey == cell.CellKey).ToList(), [(cell, result)]).Cells[0];
        var curveJson = await store.GetCurveAsync(cell.CellKey, ct);
        CurveView? curve = null;
        if (curveJson is not null)
        {
            var c = TrainingCurve.Parse(curveJson);
            curve = new CurveView(c.Steps, c.KeptStep, c.Train.Select(p => new[] { p.Step, N(p.Loss) }).ToList(),
                c.Dev.Select(p => new[] { p.Step, N(p.Loss) }).ToList());
        }

        using var definition = JsonDocument.Parse(cell.CellJson);
        JsonElement? provenance = null;
        if (result is not null)
        {
            using var p = JsonDocument.Parse(result.ProvenanceJson);
            provenance = p.RootElement.Clone();
        }

        var (outputs, note, segmentMetrics) = Outputs(cell, result, sweep.Metrics);
        return new CellView(sweep.SweepId, cell.CellKey, Label(state), state.State, definition.RootElement.Clone(),
            result is null ? null : new CellResultView(result.Status, result.Attempt, result.Error, result.WorkerId, result.Device, result.WallSeconds,
                result.PeakMemoryBytes, result.FinishedAt, Metrics(result)),
            provenance, curve, outputs, note, segmentMetrics);
    }

    /// <summary>A cell by key or unique prefix among the sweep's cells (as <see cref="CellLookup"/>, from the snapshot the other views use).</summary>
    private static (CellDescriptor Cell, CellResultRecord? Result) Find(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> cells, string sweepId,
        string key)
    {
        if (key.Length < CellLookup.MinimumPrefix)
        {
            throw new ArgumentException($"cell key '{key}' is too short: give at least {CellLookup.MinimumPrefix} characters of it");
        }

        var matches = cells.Where(c => c.Cell.CellKey.StartsWith(key, StringComparison.OrdinalIgnoreCase)).Take(2).ToList();
        return matches.Count switch
        {
            0 => throw new ArgumentException($"no cell of sweep {sweepId} has a key starting with '{key}'"),
            1 => matches[0],
            _ => throw new ArgumentException($"'{key}' matches several cells of sweep {sweepId}: give more of the key"),
        };
    }

    /// <summary>
    /// The outputs beside their references (reloaded from the cell's dataset, as <c>rescore</c> does) with per-segment scores:
    /// sentence BLEU (sacreBLEU's <c>sentence_bleu</c>), and ROUGE-L F when the spec scores ROUGE. When the data cannot be
    /// loaded the outputs are shown alone, with the reason.
    /// </summary>
    private static (IReadOnlyList<OutputRow> Rows, string? Note, IReadOnlyList<string> Metrics) Outputs(CellDescriptor cell, CellResultRecord? result,
        IReadOnlyList<string> sweepMetrics)
    {
        if (result is null || result.Outputs.Count == 0)
        {
            return ([], result is null ? "no result yet" : "no decoded outputs stored", []);
        }

        IReadOnlyList<DataEntry>? eval = null;
        string? note = null;
        try
        {
            eval = DatasetCatalog.Load(CellDefinition.FromJson(cell.CellJson).Dataset).Eval;
            if (eval.Count != result.Outputs.Count)
            {
                note = $"{result.Outputs.Count} stored outputs but the data now has {eval.Count} evaluation inputs: references not shown";
                eval = null;
            }
        }
        catch (Exception ex) when (ex is IOException or FormatException or ArgumentException or InvalidOperationException or JsonException or UnauthorizedAccessException)
        {
            note = $"references not shown: the cell's data cannot be loaded here ({ex.Message})";
        }

        var rouge = sweepMetrics.Any(m => m.StartsWith("rouge", StringComparison.Ordinal));
        IReadOnlyList<string> metrics = eval is null ? [] : rouge ? ["sentence_bleu", "rougeL"] : ["sentence_bleu"];
        var rows = result.Outputs.Select((output, i) =>
        {
            if (eval is null)
            {
                return new OutputRow(i, null, null, output, [], new Dictionary<string, double?>());
            }

            var entry = eval[i];
            var scores = new Dictionary<string, double?>(StringComparer.Ordinal)
            {
                ["sentence_bleu"] = N(SacreBleu.Sentence(output, entry.References).Score),
            };
            if (rouge)
            {
                scores["rougeL"] = N(MetricSuite.Score("rouge", [output], [entry.References]).First(s => s.Name == "rougeL").Value);
            }

            return new OutputRow(i, entry.Id, entry.Source, output, entry.References, scores);
        }).ToList();
        return (rows, note, metrics);
    }

    private static double? N(double value) => double.IsFinite(value) ? value : null;
}
