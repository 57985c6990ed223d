namespace Orchestrator.Core.Paths;

/// <summary>The data directory a command uses, and why (so that a message can say which one it looked in).</summary>
/// <param name="Path">Absolute path of the folder (it may not exist yet).</param>
/// <param name="Source">How it was chosen, e.g. <c>--data-dir</c>, <c>$ORCHESTRATOR_HOME</c>, <c>nearest .orchestrator/ above the working directory</c>.</param>
public sealed record HomeLocation(string Path, string Source)
{
    /// <summary>The embedded results database inside it.</summary>
    public string ResultsDatabase => System.IO.Path.Combine(Path, "results.db");

    public override string ToString() => $"{Path} ({Source})";
}

/// <summary>
/// One rule for the data directory (results database, artifacts, cached bases, downloaded datasets), the same from any folder:
/// an explicit <c>--data-dir</c>; else <c>$ORCHESTRATOR_HOME</c>; else the nearest <c>.orchestrator/</c> folder in the working
/// directory or one of its parents; else <c>$XDG_DATA_HOME/orchestrator</c> (default <c>~/.local/share/orchestrator</c>).
/// </summary>
public static class OrchestratorHome
{
    public const string EnvironmentVariable = "ORCHESTRATOR_HOME";

    /// <summary>The older name of <see cref="EnvironmentVariable"/>, still honoured after it.</summary>
    public const string LegacyEnvironmentVariable = "ORCHESTRATOR_DATA_DIR";

    public const string FolderName = ".orchestrator";

    /// <summary>The folder for downloaded datasets (<c>orchestrator data get</c>) inside a data directory.</summary>
    public const string DatasetsFolderName = "datasets";

    public const string DatasetsEnvironmentVariable = "ORCHESTRATOR_DATASETS";

    /// <summary>The rule applied to this process's environment and working directory.</summary>
    public static HomeLocation Locate(string? explicitDirectory = null) =>
        Locate(explicitDirectory, Environment.CurrentDirectory, Environment.GetEnvironmentVariable);

    public static HomeLocation Locate(string? explicitDirectory, string workingDirectory, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(workingDirectory);
        ArgumentNullException.ThrowIfNull(environment);
        if (!string.IsNullOrWhiteSpace(explicitDirectory))
        {
            return new HomeLocation(Full(explicitDirectory, workingDirectory), "--data-dir");
        }

        foreach (var variable in new[] { EnvironmentVariable, LegacyEnvironmentVariable })
        {
            if (environment(variable) is { Length: > 0 } fromEnvironment)
            {
                return new HomeLocation(Full(fromEnvironment, workingDirectory), "$" + variable);
            }
        }

        for (var dir = new DirectoryInfo(workingDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, FolderName);
            if (Directory.Exists(candidate))
            {
                return new HomeLocation(candidate, $"nearest {FolderName}/ at or above the working directory");
            }
        }

        return new HomeLocation(UserDefault(environment), $"default: no --data-dir, ${EnvironmentVariable} or {FolderName}/ above the working directory");
    }

    /// <summary><c>$XDG_DATA_HOME/orchestrator</c> (when absolute), else <c>~/.local/share/orchestrator</c>.</summary>
    private static string UserDefault(Func<string, string?> environment)
    {
        var dataHome = environment("XDG_DATA_HOME") is { Length: > 0 } xdg && System.IO.Path.IsPathRooted(xdg)
            ? xdg
            : System.IO.Path.Combine(environment("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return System.IO.Path.Combine(dataHome, "orchestrator");
    }

    /// <summary>
    /// The folder holding downloaded datasets: <c>$ORCHESTRATOR_DATASETS</c>, else <c>datasets/</c> in <c>$ORCHESTRATOR_HOME</c>,
    /// else <c>datasets/</c> in the user's default data directory. Unlike results, datasets are per user, not per project: a
    /// <c>.orchestrator/</c> folder of a checkout (e.g. one the local cluster creates) does not hide the datasets already fetched.
    /// </summary>
    public static HomeLocation DatasetsDirectory(string? explicitDirectory = null) =>
        DatasetsDirectory(explicitDirectory, Environment.CurrentDirectory, Environment.GetEnvironmentVariable);

    public static HomeLocation DatasetsDirectory(string? explicitDirectory, string workingDirectory, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!string.IsNullOrWhiteSpace(explicitDirectory))
        {
            return new HomeLocation(Full(explicitDirectory, workingDirectory), "--dir");
        }

        if (environment(DatasetsEnvironmentVariable) is { Length: > 0 } fromEnvironment)
        {
            return new HomeLocation(Full(fromEnvironment, workingDirectory), "$" + DatasetsEnvironmentVariable);
        }

        if (environment(EnvironmentVariable) is { Length: > 0 } home)
        {
            return new HomeLocation(System.IO.Path.Combine(Full(home, workingDirectory), DatasetsFolderName), $"{DatasetsFolderName}/ in ${EnvironmentVariable}");
        }

        return new HomeLocation(System.IO.Path.Combine(UserDefault(environment), DatasetsFolderName),
            $"default: no --dir, ${DatasetsEnvironmentVariable} or ${EnvironmentVariable}");
    }

    private static string Full(string path, string workingDirectory) => System.IO.Path.GetFullPath(System.IO.Path.Combine(workingDirectory, path));
}
