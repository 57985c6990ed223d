using Orchestrator.Core.Paths;

namespace Orchestrator.Data.Download;

/// <summary>
/// A dataset named in a spec instead of a path: <c>path: data:NAME</c> (the folder <c>orchestrator data get NAME</c> fills) or
/// <c>path: data:NAME/FILE</c> (one file in it), resolved against the datasets folder
/// (<see cref="OrchestratorHome.DatasetsDirectory(string?)"/>) of the machine that reads it. The name, not the local path, is
/// what the cell key holds, so the same spec gives the same keys on every machine; the content hash still checks the bytes.
/// </summary>
public static class DatasetNames
{
    public const string Scheme = "data:";

    private static readonly AsyncLocal<string?> Override = new();

    /// <summary>True while <see cref="UseDirectory"/> is in force in this async flow.</summary>
    public static bool IsOverridden => Override.Value is not null;

    public static bool IsName(string? path) => path is not null && path.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>Resolves names against <paramref name="directory"/> in this async flow until disposed (tests; hosts with their own folder).</summary>
    public static IDisposable UseDirectory(string directory)
    {
        var previous = Override.Value;
        Override.Value = Path.GetFullPath(directory);
        return new Restore(() => Override.Value = previous);
    }

    /// <summary>The datasets folder names resolve against here, and why.</summary>
    public static HomeLocation Directory() =>
        Override.Value is { } fixedDirectory ? new HomeLocation(fixedDirectory, "set by the host") : OrchestratorHome.DatasetsDirectory();

    /// <summary>The local path of <c>data:NAME[/FILE]</c>; a <see cref="DatasetException"/> that says what to run when it is missing.</summary>
    public static string Resolve(string name, string field = "dataset.path")
    {
        ArgumentNullException.ThrowIfNull(name);
        var rest = name[Scheme.Length..].Trim().Replace('\\', '/');
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var dataset = slash < 0 ? rest : rest[..slash];
        var relative = slash < 0 ? "" : rest[(slash + 1)..];
        if (DatasetSources.Find(dataset) is null)
        {
            throw new DatasetException(
                $"{field}: unknown dataset name '{dataset}' in '{name}' (known: {string.Join(", ", DatasetSources.All.Select(s => s.Name))}; or give a file path)");
        }

        if (relative.Split('/').Any(p => p == ".."))
        {
            throw new DatasetException($"{field}: '{name}' must stay inside the {dataset} folder");
        }

        var root = Directory();
        var path = Path.GetFullPath(Path.Combine(root.Path, dataset, relative));
        if (!File.Exists(path) && !System.IO.Directory.Exists(path))
        {
            throw new DatasetException(
                $"{field}: {name} is not on this machine: {path} does not exist (datasets folder {root}). Run `orchestrator data get {dataset}` first.");
        }

        return path;
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
