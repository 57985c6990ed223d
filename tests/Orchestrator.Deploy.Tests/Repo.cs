namespace Orchestrator.Deploy.Tests;

/// <summary>Read access to repository files by repository-relative path ('/' separators).</summary>
public interface IRepoFiles
{
    bool Exists(string relative);

    string Read(string relative);

    /// <summary>Repository-relative paths of the files under <paramref name="folder"/> whose names match <paramref name="pattern"/> (e.g. *.cs).</summary>
    IReadOnlyList<string> Files(string folder, string pattern);
}

/// <summary>The repository being checked: its root (the folder holding Orchestrator.sln) and its files.</summary>
public sealed class Repo : IRepoFiles
{
    private Repo(string root) => Root = root;

    public string Root { get; }

    public static Repo Current { get; } = new(FindRoot());

    public string Path(string relative) => System.IO.Path.Combine(Root, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));

    public bool Exists(string relative) => File.Exists(Path(relative)) || Directory.Exists(Path(relative));

    public string Read(string relative) => File.ReadAllText(Path(relative));

    public IReadOnlyList<string> Files(string folder, string pattern) =>
        Directory.Exists(Path(folder))
            ? Directory.GetFiles(Path(folder), pattern, SearchOption.AllDirectories)
                .Where(f => !f.Contains($"{System.IO.Path.DirectorySeparatorChar}bin{System.IO.Path.DirectorySeparatorChar}")
                         && !f.Contains($"{System.IO.Path.DirectorySeparatorChar}obj{System.IO.Path.DirectorySeparatorChar}"))
                .Select(f => System.IO.Path.GetRelativePath(Root, f).Replace(System.IO.Path.DirectorySeparatorChar, '/'))
                .Order(StringComparer.Ordinal)
                .ToList()
            : [];

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Orchestrator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Orchestrator.sln not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>Normalises repository-relative paths ("a/./b/../c" → "a/c").</summary>
public static class RepoPath
{
    public static string Normalize(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Replace('\\', '/').Split('/'))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == ".." && parts.Count > 0 && parts[^1] != "..")
            {
                parts.RemoveAt(parts.Count - 1);
            }
            else
            {
                parts.Add(part);
            }
        }

        return string.Join('/', parts);
    }

    public static string Combine(string folder, string relative) => Normalize(folder.Length == 0 ? relative : $"{folder}/{relative}");

    public static string Folder(string path)
    {
        var i = path.LastIndexOf('/');
        return i < 0 ? "" : path[..i];
    }
}

/// <summary>
/// The repository with some files replaced, added (text) or removed (null) in memory: how the tests show that a
/// wrong file would be caught without touching the real one.
/// </summary>
public sealed class Overlay(IRepoFiles inner, IReadOnlyDictionary<string, string?> changes) : IRepoFiles
{
    public bool Exists(string relative)
    {
        relative = RepoPath.Normalize(relative);
        if (changes.TryGetValue(relative, out var text))
        {
            return text is not null;
        }

        return inner.Exists(relative) || changes.Any(c => c.Value is not null && c.Key.StartsWith(relative + "/", StringComparison.Ordinal));
    }

    public string Read(string relative)
    {
        relative = RepoPath.Normalize(relative);
        return changes.TryGetValue(relative, out var text)
            ? text ?? throw new FileNotFoundException(relative)
            : inner.Read(relative);
    }

    public IReadOnlyList<string> Files(string folder, string pattern)
    {
        var prefix = RepoPath.Normalize(folder) + "/";
        var name = new System.Text.RegularExpressions.Regex(
            "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$");
        return inner.Files(folder, pattern)
            .Where(f => !changes.TryGetValue(f, out var text) || text is not null)
            .Concat(changes.Where(c => c.Value is not null && c.Key.StartsWith(prefix, StringComparison.Ordinal) && name.IsMatch(System.IO.Path.GetFileName(c.Key))).Select(c => c.Key))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
    }
}
