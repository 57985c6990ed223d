using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Hashing;
using Orchestrator.Results;

namespace Orchestrator.Hosting;

/// <summary>
/// <c>orchestrator import FILE</c>: the succeeded cells of a file written by <c>export --format jsonl --full</c>, stored in another
/// results database (another machine, a fresh data directory, a new cluster) so that a sweep submitted there finds them done
/// instead of training them again. A cell is identified by its key, the hash of its definition: a line whose definition does not
/// hash to its key (edited, or cut short) is refused, and a stored success is never replaced (the first is kept, as when a
/// worker reports).
/// </summary>
public static class CellImport
{
    /// <summary>A cell of the file: its result when it succeeded, else null (nothing to store).</summary>
    public sealed record ImportedCell(string CellKey, string Label, CellResultRecord? Result);

    public sealed record Outcome(int Stored, int AlreadyStored, int Skipped);

    /// <exception cref="ArgumentException">The file is missing, is not an export written with <c>--full</c>, or a line is malformed or
    /// does not match its key; the message names the line.</exception>
    public static IReadOnlyList<ImportedCell> Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new ArgumentException($"import: file not found: {path}");
        }

        var name = Path.GetFileName(path);
        var cells = new List<ImportedCell>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (line.Trim().Length == 0)
            {
                continue;
            }

            JsonElement o;
            try
            {
                using var doc = JsonDocument.Parse(line);
                o = doc.RootElement.Clone();
            }
            catch (JsonException)
            {
                throw new ArgumentException($"import: {name}:{number}: not a JSON object; import reads the JSON Lines of `orchestrator export SWEEP --format jsonl --full`");
            }

            cells.Add(Parse(o, name, number));
        }

        if (cells.Count == 0)
        {
            throw new ArgumentException($"import: {name} holds no cells");
        }

        return cells;
    }

    private static ImportedCell Parse(JsonElement o, string name, int number)
    {
        string Where() => $"import: {name}:{number}";
        if (o.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException($"{Where()}: not a JSON object");
        }

        string? Text(string field) => o.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var key = Text("cell_key") ?? throw new ArgumentException($"{Where()}: no cell_key; not a line written by `orchestrator export`");
        var label = $"{Text("method")} n={(o.TryGetProperty("size", out var size) ? size.GetRawText() : "?")} sub{(o.TryGetProperty("subsample", out var sub) ? sub.GetRawText() : "?")} " +
                    $"seed{(o.TryGetProperty("seed", out var seed) ? seed.GetRawText() : "?")}";
        var status = Text("status");
        if (status != CellStatus.Succeeded)
        {
            return new ImportedCell(key, label, null);
        }

        var cellJson = Text("cell_json") ?? throw new ArgumentException(
            $"{Where()}: {label} has no cell_json: export it with `orchestrator export SWEEP --format jsonl --full`");
        if (ContentHash.Of(cellJson) != key)
        {
            throw new ArgumentException($"{Where()}: {label}: its definition does not hash to its key {key[..Math.Min(12, key.Length)]} (edited or cut short); nothing was imported");
        }

        if (!o.TryGetProperty("outputs", out var outputs) || outputs.ValueKind != JsonValueKind.Array)
        {
            throw new ArgumentException($"{Where()}: {label} has no outputs: export it with --full");
        }

        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        if (o.TryGetProperty("metrics", out var scores) && scores.ValueKind == JsonValueKind.Object)
        {
            foreach (var m in scores.EnumerateObject())
            {
                metrics[m.Name] = m.Value.ValueKind == JsonValueKind.Number ? m.Value.GetDouble() : double.NaN;
            }
        }

        var provenance = o.TryGetProperty("provenance", out var p) && p.ValueKind == JsonValueKind.Object
            ? p.GetRawText()
            : throw new ArgumentException($"{Where()}: {label} has no provenance");
        int Int(string field) => o.TryGetProperty(field, out var v) && v.TryGetInt32(out var i)
            ? i
            : throw new ArgumentException($"{Where()}: {label}: {field} is missing or not a whole number");
        double Number(string field) => o.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0;
        var finished = Text("finished_at") is { } at && DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var when)
            ? when
            : throw new ArgumentException($"{Where()}: {label}: finished_at is missing or not a time");
        var result = new CellResultRecord(key, Int("attempt"), CellStatus.Succeeded, metrics, null, Text("worker_id") ?? "", Text("device") ?? "",
            Number("wall_seconds"), (long)Number("peak_memory_bytes"), provenance,
            outputs.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText()).ToList(), finished)
        {
            CurveJson = o.TryGetProperty("curve", out var curve) && curve.ValueKind == JsonValueKind.Object ? curve.GetRawText() : null,
        };
        return new ImportedCell(key, label, result);
    }

    /// <summary>Stores each succeeded cell's result; a cell that already has a stored success keeps it.</summary>
    public static async Task<Outcome> StoreAsync(IResultStore store, IReadOnlyList<ImportedCell> cells, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var stored = 0;
        var kept = 0;
        foreach (var cell in cells.Where(c => c.Result is not null).DistinctBy(c => c.CellKey, StringComparer.Ordinal))
        {
            var written = await store.WriteResultAsync(cell.Result!, ct);
            if (written.Written)
            {
                stored++;
            }
            else
            {
                kept++;
            }
        }

        return new Outcome(stored, kept, cells.Count(c => c.Result is null));
    }
}
