using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Aggregation;
using Orchestrator.Results;

namespace Orchestrator.Hosting;

/// <summary>A cell read back from a file written by <c>orchestrator export</c>: the file it came from and the data it trained on.</summary>
/// <param name="ManifestHash">The provenance's <c>manifest_hash</c> (its training, dev and evaluation examples); null when absent.</param>
public sealed record ExportedCell(string File, CellDescriptor Cell, CellResultRecord? Result, string? ManifestHash);

/// <summary>
/// <c>results --cells FILE…</c>: the tables of <c>results</c> built from exported cells instead of a sweep's database, so that
/// sweeps run on different machines or at different times can be combined (e.g. methods rerun later compared with the
/// methods of an earlier run, paired on the same subsamples and seeds). The points and pairs follow the database's
/// aggregate queries rule for rule (<c>ResultStore.Aggregates</c>): a point expects every exported cell at it, counts the
/// failed ones, and averages the succeeded cells that have a value.
/// </summary>
public static class ExportedCells
{
    /// <summary>Reads and merges export files (CSV or JSON Lines, by content). A cell in several files is kept once.</summary>
    /// <exception cref="ArgumentException">A file is missing or not an export, the same cell has different results in two files, or
    /// two files hold different cells for the same method, split, size, subsample and seed (two runs of one method).</exception>
    public static IReadOnlyList<ExportedCell> Read(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0)
        {
            throw new ArgumentException("--cells needs at least one file written by `orchestrator export`");
        }

        var byKey = new Dictionary<string, ExportedCell>(StringComparer.Ordinal);
        var byPlace = new Dictionary<(string, string, string, int, int, int), ExportedCell>();
        var all = new List<ExportedCell>();
        foreach (var path in paths)
        {
            foreach (var cell in ReadFile(path))
            {
                if (byKey.TryGetValue(cell.Cell.CellKey, out var seen))
                {
                    if (!SameResult(seen.Result, cell.Result))
                    {
                        throw new ArgumentException($"cell {cell.Cell.CellKey[..Math.Min(12, cell.Cell.CellKey.Length)]} ({Label(cell.Cell)}) has different " +
                                                    $"results in {seen.File} and {cell.File}: export both from the same database, or pass one of them");
                    }

                    continue;
                }

                var place = (cell.Cell.Dataset, cell.Cell.Split, cell.Cell.Method, cell.Cell.Size, cell.Cell.Subsample, cell.Cell.Seed);
                if (byPlace.TryGetValue(place, out var other) && other.File != cell.File)
                {
                    throw new ArgumentException($"{other.File} and {cell.File} both have a cell for {Label(cell.Cell)} " +
                                                $"({other.Cell.CellKey[..Math.Min(12, other.Cell.CellKey.Length)]} and {cell.Cell.CellKey[..Math.Min(12, cell.Cell.CellKey.Length)]}): " +
                                                "two runs of one method cannot be pooled; combine files that hold different methods");
                }

                byPlace.TryAdd(place, cell);
                byKey[cell.Cell.CellKey] = cell;
                all.Add(cell);
            }
        }

        return all;
    }

    /// <summary>One export file: CSV (its header starts with <c>cell_key</c>) or JSON Lines (each line an object).</summary>
    public static IReadOnlyList<ExportedCell> ReadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new ArgumentException($"--cells: file not found: {path}");
        }

        var text = File.ReadAllText(path);
        var name = Path.GetFileName(path);
        return text.TrimStart().StartsWith('{') ? ReadJsonLines(text, name) : ReadCsv(text, name);
    }

    private static List<ExportedCell> ReadCsv(string text, string name)
    {
        List<(int Line, List<string> Fields)> rows;
        try
        {
            rows = Data.Csv.Parse(text, name);
        }
        catch (Data.DatasetException ex)
        {
            throw new ArgumentException($"--cells: {ex.Message}", ex);
        }

        if (rows.Count == 0)
        {
            throw new ArgumentException($"--cells: {name} is empty");
        }

        var header = rows[0].Fields;
        var column = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < header.Count; i++)
        {
            column[header[i]] = i;
        }

        var missing = Required.Where(c => !column.ContainsKey(c)).ToList();
        if (missing.Count > 0)
        {
            throw new ArgumentException($"--cells: {name} is not a CSV written by `orchestrator export`: its header lacks {string.Join(", ", missing)} " +
                                        $"(found: {Shorten(string.Join(",", header))})");
        }

        var metrics = header.Where(h => h.StartsWith("metric:", StringComparison.Ordinal)).ToList();
        var cells = new List<ExportedCell>();
        foreach (var (line, fields) in rows.Skip(1))
        {
            if (fields.Count != header.Count)
            {
                throw new ArgumentException($"--cells: {name}:{line}: {fields.Count} fields, the header has {header.Count}");
            }

            string F(string c) => fields[column[c]];
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var m in metrics)
            {
                var v = fields[column[m]];
                values[m["metric:".Length..]] = v.Length == 0 ? double.NaN : Number(v, name, line, m);
            }

            cells.Add(Make(name, line, F("cell_key"), F("dataset"), F("split"), F("method"), F("size"), F("subsample"), F("seed"), F("status"),
                F("attempt"), F("wall_seconds"), F("finished_at"), F("error"), F("worker_id"), F("device"),
                column.TryGetValue("peak_memory_bytes", out var peak) ? fields[peak] : "", values,
                column.TryGetValue("provenance_json", out var p) ? fields[p] : ""));
        }

        return cells;
    }

    private static List<ExportedCell> ReadJsonLines(string text, string name)
    {
        var cells = new List<ExportedCell>();
        var line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            if (raw.Trim().Length == 0)
            {
                continue;
            }

            JsonElement o;
            try
            {
                o = JsonDocument.Parse(raw).RootElement.Clone();
            }
            catch (JsonException ex)
            {
                throw new ArgumentException($"--cells: {name}:{line}: not a JSON object ({ex.Message.Split(" LineNumber:")[0]})", ex);
            }

            var missing = Required.Where(c => o.ValueKind != JsonValueKind.Object || !o.TryGetProperty(c, out _)).ToList();
            if (missing.Count > 0)
            {
                throw new ArgumentException($"--cells: {name}:{line}: not a line written by `orchestrator export --format jsonl`: it lacks {string.Join(", ", missing)}");
            }

            string S(string field) => o.TryGetProperty(field, out var v) ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString()!,
                JsonValueKind.Number => v.GetRawText(),
                _ => "",
            } : "";
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            if (o.TryGetProperty("metrics", out var scores) && scores.ValueKind == JsonValueKind.Object)
            {
                foreach (var m in scores.EnumerateObject())
                {
                    values[m.Name] = m.Value.ValueKind == JsonValueKind.Number ? m.Value.GetDouble() : double.NaN;
                }
            }

            var provenance = o.TryGetProperty("provenance", out var pv) && pv.ValueKind == JsonValueKind.Object ? pv.GetRawText() : "";
            cells.Add(Make(name, line, S("cell_key"), S("dataset"), S("split"), S("method"), S("size"), S("subsample"), S("seed"), S("status"),
                S("attempt"), S("wall_seconds"), S("finished_at"), S("error"), S("worker_id"), S("device"), S("peak_memory_bytes"), values, provenance));
        }

        return cells;
    }

    private static readonly string[] Required = ["cell_key", "dataset", "split", "method", "size", "subsample", "seed", "status"];

    private static ExportedCell Make(string file, int line, string key, string dataset, string split, string method, string size, string subsample,
        string seed, string status, string attempt, string wall, string finishedAt, string error, string worker, string device, string peak,
        Dictionary<string, double> metrics, string provenance)
    {
        if (key.Length == 0)
        {
            throw new ArgumentException($"--cells: {file}:{line}: empty cell_key");
        }

        var cell = new CellDescriptor(key, dataset, split, method, Int(size, file, line, "size"), Int(subsample, file, line, "subsample"),
            Int(seed, file, line, "seed"), CellJson: "");
        CellResultRecord? result = status switch
        {
            CellStatus.Succeeded or CellStatus.Failed => new CellResultRecord(key, attempt.Length == 0 ? 0 : Int(attempt, file, line, "attempt"), status,
                metrics.Where(m => status == CellStatus.Succeeded || !double.IsNaN(m.Value)).ToDictionary(StringComparer.Ordinal),
                error.Length == 0 ? null : error, worker, device, wall.Length == 0 ? 0 : Number(wall, file, line, "wall_seconds"),
                peak.Length == 0 ? 0 : (long)Number(peak, file, line, "peak_memory_bytes"), provenance.Length == 0 ? "{}" : provenance, [],
                finishedAt.Length == 0 ? default : DateTimeOffset.Parse(finishedAt, CultureInfo.InvariantCulture)),
            "pending" or "" => null,
            _ => throw new ArgumentException($"--cells: {file}:{line}: unknown status '{status}' (an export has succeeded, failed or pending)"),
        };
        return new ExportedCell(file, cell, result, ManifestOf(provenance));
    }

    private static string? ManifestOf(string provenance)
    {
        if (provenance.Length == 0)
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(provenance);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("manifest_hash", out var m) &&
                   m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Per (dataset, split, method, size, metric): as <c>IResultStore.GetPointSumsAsync</c> computes them in SQL.</summary>
    public static IReadOnlyList<PointSums> Points(IReadOnlyList<ExportedCell> cells, string? metric = null)
    {
        var metrics = metric is not null
            ? [metric]
            : cells.Where(c => c.Result is { Status: CellStatus.Succeeded }).SelectMany(c => c.Result!.Metrics.Keys).Distinct(StringComparer.Ordinal).ToList();
        return PointAggregation.InTableOrder(cells.GroupBy(c => (c.Cell.Dataset, c.Cell.Split, c.Cell.Method, c.Cell.Size))
            .SelectMany(point => metrics.Select(m =>
            {
                var values = point.Where(c => c.Result is { Status: CellStatus.Succeeded } && c.Result.Metrics.TryGetValue(m, out var v) && !double.IsNaN(v))
                    .Select(c => c.Result!.Metrics[m]).ToList();
                return new PointSums(point.Key.Dataset, point.Key.Split, point.Key.Method, point.Key.Size, m, point.Count(),
                    point.Count(c => c.Result is { Status: CellStatus.Failed }), values.Count, values.Sum(), values.Sum(v => v * v),
                    values.Count == 0 ? double.NaN : values.Min(), values.Count == 0 ? double.NaN : values.Max());
            })));
    }

    /// <summary>
    /// As <c>IResultStore.GetPairsAsync</c>: each succeeded cell of <paramref name="a"/> with the succeeded cells of
    /// <paramref name="b"/> at the same dataset, size, subsample and seed (and split, or method). Cells from different files
    /// are paired only when their provenance shows the same examples (<c>manifest_hash</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Two cells to pair come from different files and trained or were scored on different examples,
    /// or one of them does not say which.</exception>
    public static IReadOnlyList<PairedObservation> Pairs(IReadOnlyList<ExportedCell> cells, string metric, PairedBy by, string a, string b)
    {
        static bool Valued(ExportedCell c, string metric) =>
            c.Result is { Status: CellStatus.Succeeded } r && r.Metrics.TryGetValue(metric, out var v) && !double.IsNaN(v);

        string Side(ExportedCell c) => by == PairedBy.Method ? c.Cell.Method : c.Cell.Split;
        var partners = cells.Where(c => Side(c) == b && Valued(c, metric))
            .ToLookup(c => (c.Cell.Dataset, c.Cell.Size, c.Cell.Subsample, c.Cell.Seed, Other: by == PairedBy.Method ? c.Cell.Split : c.Cell.Method));
        var pairs = new List<PairedObservation>();
        foreach (var ca in cells.Where(c => Side(c) == a && Valued(c, metric)))
        {
            foreach (var cb in partners[(ca.Cell.Dataset, ca.Cell.Size, ca.Cell.Subsample, ca.Cell.Seed, by == PairedBy.Method ? ca.Cell.Split : ca.Cell.Method)])
            {
                if (ca.File != cb.File && (ca.ManifestHash is null || cb.ManifestHash is null || ca.ManifestHash != cb.ManifestHash))
                {
                    throw new ArgumentException(
                        $"cannot pair {Label(ca.Cell)} ({ca.File}) with {Label(cb.Cell)} ({cb.File}): " +
                        (ca.ManifestHash is null || cb.ManifestHash is null
                            ? "the provenance does not say which examples one of them used (no manifest_hash)"
                            : $"they used different examples (manifest {ca.ManifestHash[..Math.Min(12, ca.ManifestHash.Length)]} vs {cb.ManifestHash[..Math.Min(12, cb.ManifestHash.Length)]}): the sweeps' datasets, pools or subsampling differ"));
                }

                pairs.Add(new PairedObservation(ca.Cell.Dataset, ca.Cell.Split, ca.Cell.Method, ca.Cell.Size, ca.Cell.Subsample, ca.Cell.Seed,
                    ca.Result!.Metrics[metric], cb.Result!.Metrics[metric]));
            }
        }

        return pairs.OrderBy(p => p.Dataset, StringComparer.Ordinal).ThenBy(p => p.Split, StringComparer.Ordinal).ThenBy(p => p.Method, StringComparer.Ordinal)
            .ThenBy(p => p.Size).ThenBy(p => p.Subsample).ThenBy(p => p.Seed).ToList();
    }

    private static string Label(CellDescriptor c) => $"{c.Method} {c.Dataset}/{c.Split} n={c.Size} sub{c.Subsample} seed{c.Seed}";

    private static bool SameResult(CellResultRecord? x, CellResultRecord? y) =>
        x is null ? y is null : y is not null && x.Status == y.Status && x.Attempt == y.Attempt && x.Metrics.Count == y.Metrics.Count &&
                                x.Metrics.All(m => y.Metrics.TryGetValue(m.Key, out var v) && (v.Equals(m.Value)));

    private static int Int(string text, string file, int line, string column) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new ArgumentException($"--cells: {file}:{line}: {column} '{Shorten(text)}' is not a whole number");

    private static double Number(string text, string file, int line, string column) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new ArgumentException($"--cells: {file}:{line}: {column} '{Shorten(text)}' is not a number");

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..117] + "...";
}
