using System.Text.Json;

namespace Orchestrator.Web;

// The JSON documents of the API (snake_case on the wire; see docs/web.md). Undefined numbers (NaN) are null.

/// <summary>A sweep in the list: its status, its cells by state, elapsed time and ETA.</summary>
public sealed record SweepSummary(
    string SweepId, string Name, string Status, DateTimeOffset SubmittedAt, int Total, int Done, int Running, int Pending, int Failed,
    int Blocked, int Waiting, bool Complete, double ElapsedSeconds, double? EtaSeconds);

/// <summary>Cells of one stage and method by state.</summary>
public sealed record MethodProgressRow(string Stage, string Method, int Total, IReadOnlyDictionary<string, int> Counts);

/// <summary>A failed or blocked cell with its reason.</summary>
public sealed record ProblemCell(string Key, string Label, string State, int Attempts, string? Reason);

/// <summary>A sweep's progress: the summary, per stage and method, the stage graph, and the cells that need attention.</summary>
public sealed record SweepProgressView(
    SweepSummary Sweep, IReadOnlyList<MethodProgressRow> Methods, IReadOnlyList<StatusStage> Stages, IReadOnlyList<ProblemCell> Problems,
    IReadOnlyList<string> Metrics)
{
    /// <summary>How many cells failed or are blocked; <see cref="Problems"/> lists the first <see cref="ResultsApi.MaxProblemsShown"/>.</summary>
    public int ProblemsTotal { get; init; }
}

/// <summary>A stage of a staged sweep, the stages it needs, and its cells by state.</summary>
public sealed record StatusStage(string Stage, IReadOnlyList<string> Needs, int Total, IReadOnlyDictionary<string, int> Counts);

/// <summary>One page of a sweep's cells.</summary>
public sealed record CellsPage(int Total, int Offset, int Limit, IReadOnlyList<CellRow> Cells);

public sealed record CellRow(
    string Key, string Stage, string Method, int Size, int Subsample, int Seed, string Split, string State, int Attempts, string? Worker,
    string? Error, IReadOnlyDictionary<string, double?> Metrics);

/// <summary>The plot: per (dataset, split) panel, one line per method with its CI band; <c>metrics</c>: every metric with values.</summary>
public sealed record PlotSeries(string Metric, IReadOnlyList<string> Metrics, IReadOnlyList<PlotPanel> Panels);

public sealed record PlotPanel(string? Dataset, string? Split, string Title, IReadOnlyList<PlotLine> Lines);

public sealed record PlotLine(string Method, IReadOnlyList<PlotPoint> Points);

public sealed record PlotPoint(int Size, int N, int Expected, bool Complete, double? Mean, double? CiLow, double? CiHigh);

/// <summary>What the sweep cost (<c>results --compute</c>).</summary>
public sealed record ComputeView(IReadOnlyList<ComputeRow> Rows, double ElapsedSeconds, int Cells, double? CellsPerHour);

public sealed record ComputeRow(string Method, int Cells, int Packed, int ReusedTraining, double WallSeconds, double? MeanSeconds);

/// <summary>A cell: definition, key, result and provenance, training curve, and outputs beside their references.</summary>
public sealed record CellView(
    string SweepId, string Key, string Label, string State, JsonElement Definition, CellResultView? Result, JsonElement? Provenance,
    CurveView? Curve, IReadOnlyList<OutputRow> Outputs, string? OutputsNote, IReadOnlyList<string> SegmentMetrics);

public sealed record CellResultView(
    string Status, int Attempt, string? Error, string Worker, string Device, double WallSeconds, long PeakMemoryBytes, DateTimeOffset FinishedAt,
    IReadOnlyDictionary<string, double?> Metrics);

public sealed record CurveView(int Steps, int KeptStep, IReadOnlyList<double?[]> Train, IReadOnlyList<double?[]> Dev);

/// <summary>One evaluation input: its id and source, the cell's output, the references, and per-segment scores.</summary>
public sealed record OutputRow(int Index, string? Id, string? Source, string Output, IReadOnlyList<string> References,
    IReadOnlyDictionary<string, double?> Scores);

/// <summary>A server-sent event's data: the counts and the results fingerprint; the page refetches what changed.</summary>
public sealed record ProgressEvent(string SweepId, int Total, int Done, int Running, int Pending, int Failed, int Blocked, int Waiting,
    bool Complete, string ResultsVersion);

/// <summary>An error: what was wrong with the request.</summary>
public sealed record ApiError(string Error);
