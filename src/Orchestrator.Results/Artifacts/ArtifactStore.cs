using Orchestrator.Core.Hashing;

namespace Orchestrator.Results.Artifacts;

/// <summary>
/// Content-addressed storage of trained methods (artifacts) in a directory every worker can read (a shared file system
/// path, or a mounted object-store bucket): an artifact is a folder stored once under <c>ROOT/ab/abcdef…/</c>, named by
/// the SHA-256 of its files (<see cref="ContentHash.OfDirectory"/>). The results database holds the index (which cell stored
/// which hash: <see cref="IResultStore.RecordArtifactAsync"/>). Writes go to a temporary folder and are renamed into place,
/// so a reader never sees half an artifact, and two workers storing the same content race harmlessly.
/// </summary>
public sealed class ArtifactStore
{
    public const string PeftMethodKind = "peft-method";
    private const string TemporaryFolder = ".incoming";

    public ArtifactStore(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
    }

    /// <summary>The store's directory.</summary>
    public string Root { get; }

    /// <summary>A fresh, empty folder inside the store (same file system) for a worker to write an artifact into.</summary>
    public string CreateStaging()
    {
        var path = Path.Combine(Root, TemporaryFolder, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>
    /// Moves the folder <paramref name="staged"/> (from <see cref="CreateStaging"/>, or any folder, which is then copied) into
    /// the store under its content hash and returns its index record for <paramref name="cellKey"/>. Idempotent.
    /// </summary>
    public ArtifactRecord Put(string cellKey, string kind, string staged)
    {
        if (!Directory.Exists(staged))
        {
            throw new DirectoryNotFoundException($"artifact folder {staged} does not exist");
        }

        var files = Directory.GetFiles(staged, "*", SearchOption.AllDirectories);
        if (files.Length == 0)
        {
            throw new InvalidOperationException($"artifact folder {staged} of cell {cellKey} is empty");
        }

        var hash = ContentHash.OfDirectory(staged);
        var bytes = files.Sum(f => new FileInfo(f).Length);
        var target = PathOf(hash);
        if (!Directory.Exists(target))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var inStore = Path.GetFullPath(staged).StartsWith(Path.Combine(Root, TemporaryFolder) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
            var source = inStore ? staged : CopyToStaging(staged);
            try
            {
                Directory.Move(source, target);
            }
            catch (IOException) when (Directory.Exists(target))
            {
                // Another worker stored the same content first.
                Directory.Delete(source, recursive: true);
            }
        }
        else if (Path.GetFullPath(staged).StartsWith(Path.Combine(Root, TemporaryFolder), StringComparison.Ordinal))
        {
            Directory.Delete(staged, recursive: true);
        }

        return new ArtifactRecord(cellKey, kind, hash, bytes, DateTimeOffset.UtcNow);
    }

    /// <summary>The folder of an artifact with content hash <paramref name="sha256"/> (whether or not it exists).</summary>
    public string PathOf(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(Uri.IsHexDigit))
        {
            throw new ArgumentException($"'{sha256}' is not a SHA-256 content hash", nameof(sha256));
        }

        return Path.Combine(Root, sha256[..2], sha256);
    }

    /// <summary>
    /// The folder of <paramref name="artifact"/>, checked: it must exist and its content must still hash to the recorded value
    /// (a truncated copy or a hand edit is caught here, not halfway through training).
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder is missing.</exception>
    /// <exception cref="InvalidDataException">Its content no longer matches its hash.</exception>
    public string Open(ArtifactRecord artifact)
    {
        var path = PathOf(artifact.Sha256);
        if (!Directory.Exists(path))
        {
            throw new FileNotFoundException(
                $"the artifact of cell {artifact.CellKey[..Math.Min(12, artifact.CellKey.Length)]} ({artifact.Sha256[..12]}) is missing from {Root}: " +
                "was it deleted, or does this worker use another artifact directory?", path);
        }

        var actual = ContentHash.OfDirectory(path);
        if (actual != artifact.Sha256)
        {
            throw new InvalidDataException($"the artifact {path} is corrupt: its content hashes to {actual[..12]}, not {artifact.Sha256[..12]}");
        }

        return path;
    }

    /// <summary>The content hashes of every artifact folder in the store.</summary>
    public IReadOnlyList<string> ListHashes() =>
        !Directory.Exists(Root)
            ? []
            : Directory.EnumerateDirectories(Root)
                .Where(d => Path.GetFileName(d) is { Length: 2 } prefix && prefix.All(Uri.IsHexDigit))
                .SelectMany(Directory.EnumerateDirectories)
                .Select(Path.GetFileName)
                .OfType<string>()
                .Where(h => h.Length == 64)
                .Order(StringComparer.Ordinal)
                .ToList();

    /// <summary>How long ago the artifact folder with this hash was last written (its files added); zero when it is missing.</summary>
    public TimeSpan AgeOf(string sha256)
    {
        var path = PathOf(sha256);
        return Directory.Exists(path) ? DateTime.UtcNow - Directory.GetLastWriteTimeUtc(path) : TimeSpan.Zero;
    }

    /// <summary>Deletes the artifact folder with this hash (if present); returns the bytes freed.</summary>
    public long Delete(string sha256)
    {
        var path = PathOf(sha256);
        if (!Directory.Exists(path))
        {
            return 0;
        }

        var bytes = Directory.GetFiles(path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Directory.Delete(path, recursive: true);
        return bytes;
    }

    /// <summary>Removes staging folders left by workers that stopped while writing (older than <paramref name="age"/>).</summary>
    public int CleanStaging(TimeSpan age)
    {
        var staging = Path.Combine(Root, TemporaryFolder);
        if (!Directory.Exists(staging))
        {
            return 0;
        }

        var removed = 0;
        foreach (var dir in Directory.EnumerateDirectories(staging).Where(d => DateTime.UtcNow - Directory.GetLastWriteTimeUtc(d) > age).ToList())
        {
            Directory.Delete(dir, recursive: true);
            removed++;
        }

        return removed;
    }

    private string CopyToStaging(string source)
    {
        var staging = CreateStaging();
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(staging, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return staging;
    }
}
