using System.Globalization;

namespace Orchestrator.Hosting;

/// <summary>
/// Makes one embedded process the only user of a data directory. Two embedded processes on one folder would each keep
/// their own in-memory queue over the same SQLite file: both would train the same cells, and a <c>cancel</c> or
/// <c>rerun-failed</c> in one would not reach the other. The lock is an exclusive OS lock (<c>flock</c>) on
/// <c>DATA_DIR/embedded.lock</c>, held while the host lives and released by the kernel when the process dies, even by
/// SIGKILL, so a crash never leaves the folder locked. The holder writes its pid, start time and command line to
/// <c>DATA_DIR/embedded.owner</c> so that a refused process can say who holds it.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    public const string LockFileName = "embedded.lock";
    public const string OwnerFileName = "embedded.owner";

    private readonly FileStream _lock;
    private readonly string _ownerPath;

    private DataDirectoryLock(FileStream held, string ownerPath)
    {
        _lock = held;
        _ownerPath = ownerPath;
    }

    /// <summary>
    /// Takes the lock of <paramref name="dataDirectory"/> (which must exist), or throws <see cref="InvalidOperationException"/>
    /// naming the process that holds it.
    /// </summary>
    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        var folder = Path.GetFullPath(dataDirectory);
        var lockPath = Path.Combine(folder, LockFileName);
        var ownerPath = Path.Combine(folder, OwnerFileName);
        FileStream held;
        try
        {
            // FileShare.None is an exclusive flock on Unix (and a sharing lock on Windows).
            held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new InvalidOperationException(
                $"the data directory {folder} is in use by another orchestrator process ({Owner(ownerPath)}). Two embedded processes on one " +
                "data directory would train the same cells twice: wait for it to finish or stop it, use another --data-dir, or run a " +
                "cluster (deploy/local/cluster.sh) to share work between processes. To follow a running sweep, start it with --ui-port N and open its results page.");
        }

        var owner = string.Create(CultureInfo.InvariantCulture,
            $"pid {Environment.ProcessId}, started {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}Z: {string.Join(' ', Environment.GetCommandLineArgs())}");
        File.WriteAllText(ownerPath, owner + Environment.NewLine);
        return new DataDirectoryLock(held, ownerPath);
    }

    /// <summary>What the holder wrote about itself (best effort: the holder may be writing it at this moment).</summary>
    private static string Owner(string ownerPath)
    {
        try
        {
            var text = File.Exists(ownerPath) ? File.ReadAllText(ownerPath).Trim() : "";
            return text.Length == 0 ? "it has not said which yet" : text.Length > 300 ? text[..300] + "…" : text;
        }
        catch (IOException)
        {
            return "its details are unreadable";
        }
    }

    public void Dispose()
    {
        try
        {
            File.Delete(_ownerPath);
        }
        catch (IOException)
        {
            // The next holder overwrites it.
        }

        _lock.Dispose();
    }
}
