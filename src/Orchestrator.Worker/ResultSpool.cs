using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Results;

namespace Orchestrator.Worker;

/// <summary>A computed result waiting to be written: the row, the lease it was computed under and its training run.</summary>
public sealed record SpooledResult(CellResultRecord Result, string LeaseId, string Label, string? RunId);

/// <summary>
/// The worker's local copy of computed results not yet written to the database: one JSON file per result, saved (atomically,
/// flushed to disk) before the write is tried and deleted once it has succeeded. What is left after a crash or a long
/// database outage is uploaded when a worker next starts on the same directory.
/// </summary>
public sealed class ResultSpool(string directory)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string Directory { get; } = directory;

    /// <summary>Saves the result and returns its file.</summary>
    public string Save(SpooledResult spooled)
    {
        ArgumentNullException.ThrowIfNull(spooled);
        System.IO.Directory.CreateDirectory(Directory);
        var path = Path.Combine(Directory, $"{spooled.Result.CellKey}.{spooled.LeaseId}.json");
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, spooled, Json);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        return path;
    }

    public static void Delete(string path) => File.Delete(path);

    /// <summary>The spooled results (oldest first) with their files; unreadable files are skipped and named in <paramref name="unreadable"/>.</summary>
    public IReadOnlyList<(string Path, SpooledResult Result)> Pending(ICollection<string>? unreadable = null)
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return [];
        }

        var pending = new List<(string, SpooledResult)>();
        foreach (var file in new DirectoryInfo(Directory).GetFiles("*.json").OrderBy(f => f.LastWriteTimeUtc))
        {
            try
            {
                using var stream = file.OpenRead();
                if (JsonSerializer.Deserialize<SpooledResult>(stream, Json) is { Result: not null } spooled)
                {
                    pending.Add((file.FullName, spooled));
                    continue;
                }
            }
            catch (Exception ex) when (ex is JsonException or IOException or NotSupportedException)
            {
            }

            unreadable?.Add(file.FullName);
        }

        return pending;
    }
}
