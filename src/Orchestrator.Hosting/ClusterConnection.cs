namespace Orchestrator.Hosting;

/// <summary>
/// Where a process finds the cluster's PostgreSQL connection string. A password on the command line is visible to every
/// user of the machine (<c>ps</c>, <c>/proc/PID/cmdline</c>), so besides <c>--cluster</c> the string can come from a file
/// (<c>--cluster-file PATH</c>, <c>ORCHESTRATOR_CLUSTER_FILE</c>: a 0600 file, a mounted Kubernetes secret) or from the
/// environment (<c>ORCHESTRATOR_CLUSTER</c>), which only the process's own user can read.
/// </summary>
public static class ClusterConnection
{
    public const string Variable = "ORCHESTRATOR_CLUSTER";
    public const string FileVariable = "ORCHESTRATOR_CLUSTER_FILE";

    /// <summary>
    /// The connection string, first found of: <paramref name="value"/> (<c>--cluster</c>), <paramref name="file"/>
    /// (<c>--cluster-file</c>), <paramref name="environmentValue"/> (<see cref="Variable"/>), <paramref name="environmentFile"/>
    /// (<see cref="FileVariable"/>); null when none is given (embedded mode). Throws <see cref="ArgumentException"/> when both
    /// a value and a file are given on the command line, or a file cannot be read or holds nothing.
    /// </summary>
    public static string? Resolve(string? value, string? file, string? environmentValue, string? environmentFile)
    {
        if (!string.IsNullOrWhiteSpace(value) && !string.IsNullOrWhiteSpace(file))
        {
            throw new ArgumentException("give either --cluster or --cluster-file, not both");
        }

        if (!string.IsNullOrWhiteSpace(value))
        {
            return value.Trim();
        }

        if (!string.IsNullOrWhiteSpace(file))
        {
            return Read(file, "--cluster-file");
        }

        if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            return environmentValue.Trim();
        }

        return string.IsNullOrWhiteSpace(environmentFile) ? null : Read(environmentFile, FileVariable);
    }

    private static string Read(string path, string source)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the connection file {path} ({source}): {ex.Message}", ex);
        }

        // The first line that is not a comment: a file may say what it is for.
        var line = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith('#'));
        return line ?? throw new ArgumentException($"the connection file {path} ({source}) is empty");
    }
}
