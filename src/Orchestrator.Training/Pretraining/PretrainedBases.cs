using System.Collections.Concurrent;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Training.Pretraining;

/// <summary>
/// The on-disk cache of pretrained bases: <c>DATA_DIR/bases/HASH/</c> (HASH = <see cref="PretrainRecipe.Hash"/>), a Hugging
/// Face GPT-2 folder plus <c>pretrain.json</c>. A recipe is pretrained once: concurrent callers in this process wait for the
/// first, other processes sharing the data directory wait on a lock file (<c>HASH.lock</c>); the folder appears atomically
/// (written under a temporary name, then renamed), so a half-written base is never used.
/// </summary>
public static class PretrainedBases
{
    public const string Folder = "bases";

    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);

    /// <summary>Where the base of <paramref name="hash"/> lives under <paramref name="dataDirectory"/>.</summary>
    public static string DirectoryFor(string dataDirectory, string hash) =>
        Path.Combine(Path.GetFullPath(dataDirectory), Folder, hash);

    /// <summary>Whether a complete base is in <paramref name="directory"/>.</summary>
    public static bool IsComplete(string directory) =>
        File.Exists(Path.Combine(directory, BasePretrainer.ReportFile)) && File.Exists(Path.Combine(directory, ModelCheckpoint.WeightsFile));

    /// <summary>
    /// The folder of the recipe's base, pretraining it first if it is not cached. <paramref name="log"/> hears about a
    /// pretraining run (start and end).
    /// </summary>
    /// <param name="shippedRoot">
    /// A folder that may hold the recipe's base already built (<c>shippedRoot/HASH/</c>, with its content hash in
    /// <c>shippedRoot/HASH.sha256</c>), as <c>sweeps/bases/</c> keeps the demo's: it is checked and copied instead of pretrained.
    /// </param>
    /// <exception cref="InvalidDataException">The shipped base does not match its recorded content hash or its recipe.</exception>
    public static string Ensure(
        PretrainRecipe recipe,
        string dataDirectory,
        Action<string>? log = null,
        IProgress<TrainProgress>? progress = null,
        CancellationToken cancellationToken = default,
        string? shippedRoot = null)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(dataDirectory);
        string hash = recipe.Hash;
        string target = DirectoryFor(dataDirectory, hash);
        if (IsComplete(target))
        {
            return target;
        }

        SemaphoreSlim gate = Gates.GetOrAdd(hash, _ => new SemaphoreSlim(1, 1));
        gate.Wait(cancellationToken);
        try
        {
            string root = Path.GetDirectoryName(target)!;
            Directory.CreateDirectory(root);
            using FileStream fileLock = AcquireFileLock(Path.Combine(root, hash + ".lock"), cancellationToken);
            if (IsComplete(target))
            {
                return target;
            }

            string temp = Path.Combine(root, $"{hash}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
            try
            {
                string? shipped = shippedRoot is null ? null : ShippedBase(recipe, shippedRoot);
                if (shipped is not null)
                {
                    CopyDirectory(shipped, temp);
                }
                else
                {
                    log?.Invoke($"Pretraining base {hash[..12]} ({recipe.Preset}, {recipe.Steps} steps on the {recipe.Corpus} corpus) into {target}");
                }

                PretrainReport report = shipped is not null
                    ? BasePretrainer.ReadReport(temp) ?? throw new InvalidDataException($"{shipped}: {BasePretrainer.ReportFile} is unreadable")
                    : BasePretrainer.Pretrain(recipe, temp, progress, cancellationToken);
                if (Directory.Exists(target))
                {
                    Directory.Delete(target, recursive: true); // an incomplete leftover
                }

                Directory.Move(temp, target);
                log?.Invoke(shipped is not null
                    ? $"Base {hash[..12]} copied from {shipped} (content hash checked; pretrained in {report.TokenizerSeconds + report.TrainSeconds:F0} s, validation loss {report.ValidationLoss:F2})"
                    : $"Pretrained base {hash[..12]} in {report.TokenizerSeconds + report.TrainSeconds:F1} s: loss {report.FirstLoss:F2} → {report.FinalLoss:F2}, validation {report.ValidationLossBefore:F2} → {report.ValidationLoss:F2}");
            }
            finally
            {
                if (Directory.Exists(temp))
                {
                    Directory.Delete(temp, recursive: true);
                }
            }

            return target;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The content-hash file of a shipped base: <c>HASH.sha256</c> beside its folder.</summary>
    public static string ShippedHashFile(string shippedRoot, string hash) => Path.Combine(shippedRoot, hash + ".sha256");

    /// <summary>
    /// The shipped base of <paramref name="recipe"/> under <paramref name="shippedRoot"/>, checked, or null when there is none.
    /// </summary>
    /// <exception cref="InvalidDataException">It is incomplete, changed since its hash was recorded, or built from another recipe.</exception>
    public static string? ShippedBase(PretrainRecipe recipe, string shippedRoot)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        string folder = Path.Combine(shippedRoot, recipe.Hash);
        if (!Directory.Exists(folder))
        {
            return null;
        }

        string hashFile = ShippedHashFile(shippedRoot, recipe.Hash);
        if (!IsComplete(folder) || !File.Exists(hashFile))
        {
            throw new InvalidDataException(
                $"Shipped base {folder} is incomplete (it needs {ModelCheckpoint.WeightsFile}, {BasePretrainer.ReportFile} and {hashFile}); delete the folder to pretrain the base instead.");
        }

        string expected = File.ReadAllText(hashFile).Trim().Split(' ', 2)[0];
        string actual = ContentHash.OfDirectory(folder);
        if (!string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException(
                $"Shipped base {folder} has content hash {actual[..12]}, but {Path.GetFileName(hashFile)} records {expected[..Math.Min(12, expected.Length)]}: its files changed. Restore them (git checkout) or delete the folder to pretrain the base instead.");
        }

        if (BasePretrainer.ReadReport(folder) is not { } report || report.Hash != recipe.Hash)
        {
            throw new InvalidDataException($"Shipped base {folder} was not pretrained from the recipe {recipe.Hash[..12]} its folder is named after.");
        }

        return folder;
    }

    /// <summary>
    /// Keeps a pretrained base beside a spec: copies <paramref name="folder"/> to <c>shippedRoot/HASH/</c> and records its
    /// content hash in <c>shippedRoot/HASH.sha256</c>, so that runs of the spec copy it instead of pretraining.
    /// </summary>
    public static string Ship(string folder, string shippedRoot, string hash)
    {
        string target = Path.Combine(shippedRoot, hash);
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        CopyDirectory(folder, target);
        File.WriteAllText(ShippedHashFile(shippedRoot, hash), ContentHash.OfDirectory(target) + "  " + hash + "/\n");
        return target;
    }

    private static void CopyDirectory(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
    }

    private static FileStream AcquireFileLock(string path, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                // Another process is pretraining this base.
                cancellationToken.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }
}
