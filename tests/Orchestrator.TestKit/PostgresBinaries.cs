using System.Diagnostics;

namespace Orchestrator.TestKit;

/// <summary>Thrown when the PostgreSQL server binaries (initdb, pg_ctl) cannot be found.</summary>
public sealed class PostgresBinariesNotFoundException(string message) : Exception(message);

/// <summary>
/// Locates the PostgreSQL server binaries <c>initdb</c> and <c>pg_ctl</c>, in this order:
/// <list type="number">
/// <item>the environment variable <c>ORCHESTRATOR_PG_BINDIR</c> (authoritative: when set, nothing else is tried);</item>
/// <item><c>pg_config --bindir</c>;</item>
/// <item>the highest version under <c>/usr/lib/postgresql/*/bin</c>;</item>
/// <item>the directories on <c>PATH</c> (symbolic links are followed to the real directory).</item>
/// </list>
/// </summary>
public static class PostgresBinaries
{
    /// <summary>Name of the environment variable that overrides the search.</summary>
    public const string BinDirEnvironmentVariable = "ORCHESTRATOR_PG_BINDIR";

    private const string Fix =
        "Install the Debian/Ubuntu package 'postgresql' (apt-get install -y postgresql) or set " +
        BinDirEnvironmentVariable + " to the directory that contains initdb and pg_ctl.";

    /// <summary>Returns the directory holding initdb and pg_ctl, or throws <see cref="PostgresBinariesNotFoundException"/>.</summary>
    public static string Locate()
    {
        var overrideDir = Environment.GetEnvironmentVariable(BinDirEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(overrideDir))
        {
            if (HasServerBinaries(overrideDir))
            {
                return Path.GetFullPath(overrideDir);
            }

            throw new PostgresBinariesNotFoundException(
                $"PostgreSQL server binaries (initdb, pg_ctl) not found in {BinDirEnvironmentVariable}='{overrideDir}'. {Fix}");
        }

        var searched = new List<string>();
        foreach (var candidate in Candidates())
        {
            searched.Add(candidate);
            if (HasServerBinaries(candidate))
            {
                return Path.GetFullPath(candidate);
            }
        }

        var where = searched.Count == 0 ? "nowhere" : string.Join(", ", searched.Distinct());
        throw new PostgresBinariesNotFoundException(
            $"PostgreSQL server binaries (initdb, pg_ctl) not found (searched: pg_config --bindir, /usr/lib/postgresql/*/bin, PATH: {where}). {Fix}");
    }

    /// <summary>True when <paramref name="directory"/> contains both initdb and pg_ctl.</summary>
    public static bool HasServerBinaries(string directory) =>
        File.Exists(Path.Combine(directory, "initdb")) && File.Exists(Path.Combine(directory, "pg_ctl"));

    private static IEnumerable<string> Candidates()
    {
        var fromPgConfig = PgConfigBinDir();
        if (fromPgConfig is not null)
        {
            yield return fromPgConfig;
        }

        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var versions = Directory.GetDirectories(debianRoot)
                .Select(d => (Dir: d, Version: ParseVersion(Path.GetFileName(d))))
                .Where(x => x.Version is not null)
                .OrderByDescending(x => x.Version);
            foreach (var (dir, _) in versions)
            {
                yield return Path.Combine(dir, "bin");
            }
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var initdb = Path.Combine(dir, "initdb");
            if (!File.Exists(initdb))
            {
                continue;
            }

            // /usr/local/bin/initdb may be a link into /usr/lib/postgresql/N/bin: prefer the real directory.
            string? realDir = null;
            try
            {
                var target = File.ResolveLinkTarget(initdb, returnFinalTarget: true);
                realDir = target is null ? null : Path.GetDirectoryName(target.FullName);
            }
            catch (IOException)
            {
            }

            if (realDir is not null)
            {
                yield return realDir;
            }

            yield return dir;
        }
    }

    private static Version? ParseVersion(string name) =>
        Version.TryParse(name.Contains('.') ? name : name + ".0", out var v) ? v : null;

    private static string? PgConfigBinDir()
    {
        try
        {
            var psi = new ProcessStartInfo("pg_config", "--bindir")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var p = Process.Start(psi);
            if (p is null)
            {
                return null;
            }

            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(10_000))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                return null;
            }

            Task.WaitAll(stdout, stderr);
            var dir = stdout.Result.Trim();
            return p.ExitCode == 0 && dir.Length > 0 ? dir : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // pg_config is not installed
        }
    }
}
