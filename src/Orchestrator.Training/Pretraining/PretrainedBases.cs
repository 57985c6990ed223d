using System.Collections.Concurrent;
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
    public static string Ensure(
        PretrainRecipe recipe,
        string dataDirectory,
        Action<string>? log = null,
        IProgress<TrainProgress>? progress = null,
        CancellationToken cancellationToken = default)
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
                log?.Invoke($"Pretraining base {hash[..12]} ({recipe.Preset}, {recipe.Steps} steps on the {recipe.Corpus} corpus) into {target}");
                PretrainReport report = BasePretrainer.Pretrain(recipe, temp, progress, cancellationToken);
                if (Directory.Exists(target))
                {
                    Directory.Delete(target, recursive: true); // an incomplete leftover
                }

                Directory.Move(temp, target);
                log?.Invoke($"Pretrained base {hash[..12]} in {report.TokenizerSeconds + report.TrainSeconds:F1} s: loss {report.FirstLoss:F2} → {report.FinalLoss:F2}, validation {report.ValidationLossBefore:F2} → {report.ValidationLoss:F2}");
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
