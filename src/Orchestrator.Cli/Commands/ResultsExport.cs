using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.Cli.Commands;

/// <summary><c>orchestrator export</c>: every cell of a sweep with its result, provenance and scores, as CSV or JSON Lines.</summary>
internal static class ResultsExport
{
    private static readonly JsonSerializerOptions JsonLines = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static readonly string[] FixedColumns =
    [
        "cell_key", "dataset", "split", "method", "size", "subsample", "seed", "status", "attempt", "worker_id", "device",
        "wall_seconds", "peak_memory_bytes", "finished_at", "error", "trainings",
    ];

    /// <summary>Writes the file; returns the number of cells written.</summary>
    /// <param name="trainings">Training runs recorded per cell key (the <c>trainings</c> column: how many times it actually trained).</param>
    /// <param name="full">JSON Lines only: also each cell's definition (<c>cell_json</c>, the text whose hash is its key) and training
    /// curve (<c>curve</c>), what <c>orchestrator import</c> needs.</param>
    public static int Write(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> cells, string format, string path, bool withOutputs,
        IReadOnlyDictionary<string, int>? trainings = null, bool full = false)
    {
        trainings ??= new Dictionary<string, int>();
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var metrics = cells.Where(c => c.Result is not null).SelectMany(c => c.Result!.Metrics.Keys)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        switch (format)
        {
            case "csv":
                var header = FixedColumns.Concat(metrics.Select(m => "metric:" + m)).Append("provenance_json");
                if (withOutputs)
                {
                    header = header.Append("outputs_json");
                }

                var text = new StringBuilder();
                ResultsReport.CsvRow(text, header.ToArray());
                foreach (var (cell, result) in cells)
                {
                    var fields = Fixed(cell, result, trainings)
                        .Concat(metrics.Select(m => result is not null && result.Metrics.TryGetValue(m, out var v) ? ResultsReport.R(v) : ""))
                        .Append(result?.ProvenanceJson ?? "");
                    if (withOutputs)
                    {
                        fields = fields.Append(result is null ? "" : JsonSerializer.Serialize(result.Outputs));
                    }

                    ResultsReport.CsvRow(text, fields.ToArray());
                }

                writer.Write(text.ToString());
                break;
            case "jsonl":
                foreach (var (cell, result) in cells)
                {
                    var line = new JsonObject();
                    var values = Fixed(cell, result, trainings).ToList();
                    for (var i = 0; i < FixedColumns.Length; i++)
                    {
                        line[FixedColumns[i]] = FixedColumns[i] switch
                        {
                            "size" => cell.Size,
                            "subsample" => cell.Subsample,
                            "seed" => cell.Seed,
                            "attempt" => result?.Attempt,
                            "wall_seconds" => result?.WallSeconds,
                            "peak_memory_bytes" => result?.PeakMemoryBytes,
                            "trainings" => trainings.GetValueOrDefault(cell.CellKey),
                            _ => values[i] is { Length: > 0 } v ? v : null,
                        };
                    }

                    var scores = new JsonObject();
                    foreach (var (name, value) in (result?.Metrics ?? new Dictionary<string, double>()).OrderBy(m => m.Key, StringComparer.Ordinal))
                    {
                        scores[name] = double.IsNaN(value) || double.IsInfinity(value) ? null : value;
                    }

                    line["metrics"] = scores;
                    line["provenance"] = result is null ? null : JsonNode.Parse(result.ProvenanceJson);
                    if (withOutputs)
                    {
                        line["outputs"] = result is null ? null : new JsonArray(result.Outputs.Select(o => (JsonNode?)JsonValue.Create(o)).ToArray());
                    }

                    if (full)
                    {
                        line["cell_json"] = cell.CellJson;
                        line["curve"] = result?.CurveJson is { } curve ? JsonNode.Parse(curve) : null;
                    }

                    writer.WriteLine(line.ToJsonString(JsonLines));
                }

                break;
            default:
                throw new ArgumentException($"unknown export format '{format}': use csv or jsonl");
        }

        return cells.Count;
    }

    private static IEnumerable<string> Fixed(CellDescriptor cell, CellResultRecord? result, IReadOnlyDictionary<string, int> trainings) =>
    [
        cell.CellKey, cell.Dataset, cell.Split, cell.Method, I(cell.Size), I(cell.Subsample), I(cell.Seed),
        result?.Status ?? "pending", result is null ? "" : I(result.Attempt), result?.WorkerId ?? "", result?.Device ?? "",
        result is null ? "" : ResultsReport.R(result.WallSeconds), result is null ? "" : result.PeakMemoryBytes.ToString(CultureInfo.InvariantCulture),
        result?.FinishedAt.ToString("O", CultureInfo.InvariantCulture) ?? "", result?.Error ?? "", I(trainings.GetValueOrDefault(cell.CellKey)),
    ];

    private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
}
