using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.Training;
using Orchestrator.Training.Peft;

namespace Orchestrator.Worker;

/// <summary>
/// What a cell of a staged sweep exchanges with the artifact store: the trained methods it needs (looked up in the artifact
/// index, opened and checked against their hashes) and a staging folder for its own trained method, moved into the store and
/// indexed once the cell has succeeded.
/// </summary>
internal sealed class ArtifactStaging(IResultStore store, string directory, ILogger logger)
{
    private ArtifactStore? _files;

    public ArtifactStore Files => _files ??= new ArtifactStore(directory);

    /// <summary>
    /// The trained methods <paramref name="work"/> needs and where to save its own; null for a plain cell. A needed artifact that
    /// is missing from the store or fails its hash is rebuilt by <paramref name="retrain"/> (its source cell trains again) instead
    /// of failing this cell; one never stored (the source kept no artifact) is an error that says how to get it.
    /// </summary>
    public async Task<TrialArtifacts?> PrepareAsync(CellWork work, Func<CellDescriptor, CellWork, CancellationToken, Task<ArtifactRecord>> retrain,
        CancellationToken ct)
    {
        if (work.Dependencies.Count == 0 && !work.KeepArtifact)
        {
            return null;
        }

        var dependencies = new List<PeftDependency>();
        if (work.Dependencies.Count > 0)
        {
            var index = await store.GetArtifactsAsync(work.Dependencies, ct);
            var missing = work.Dependencies.Where(k => !index.ContainsKey(k)).ToList();
            if (missing.Count > 0)
            {
                throw new InvalidOperationException(
                    $"{missing.Count} of the {work.Dependencies.Count} cells this cell needs have no stored artifact " +
                    $"({string.Join(", ", missing.Select(k => k[..Math.Min(12, k.Length)]))}): they finished without keeping their trained method; " +
                    "resubmit the sweep so that they are trained again with execution.artifacts 'needed' or 'all'");
            }

            IReadOnlyDictionary<string, CellDescriptor>? sweepCells = null;
            foreach (var key in work.Dependencies)
            {
                string path;
                try
                {
                    path = Files.Open(index[key]);
                }
                catch (Exception ex) when (ex is FileNotFoundException or InvalidDataException)
                {
                    logger.LogWarning("Cell {Label}: {Problem}; training cell {Source} again to rebuild it", work.Label, ex.Message, key[..Math.Min(12, key.Length)]);
                    sweepCells ??= (await store.GetSweepCellsAsync(work.SweepId, ct)).ToDictionary(c => c.Cell.CellKey, c => c.Cell, StringComparer.Ordinal);
                    if (!sweepCells.TryGetValue(key, out var source))
                    {
                        throw new InvalidOperationException($"{ex.Message}; its cell is not part of sweep {work.SweepId}, so it cannot be trained again here", ex);
                    }

                    path = Files.Open(await retrain(source, work, ct));
                }

                dependencies.Add(new PeftDependency(key, path));
            }
        }

        return new TrialArtifacts(dependencies, work.KeepArtifact ? Files.CreateStaging() : null);
    }

    /// <summary>A staging folder for a packed cell's trained method, or null when it is not kept.</summary>
    public string? StagingFor(CellWork work) => work.KeepArtifact ? Files.CreateStaging() : null;

    /// <summary>Moves a trained method from its staging folder into the artifact store and indexes it (before the lease completes).</summary>
    public async Task<ArtifactRecord> StoreAsync(CellWork work, string staged)
    {
        var stored = Files.Put(work.CellKey, ArtifactStore.PeftMethodKind, staged);
        await store.RecordArtifactAsync(stored, CancellationToken.None);
        logger.LogInformation("Cell {Label} ({Key}): trained method stored as artifact {Hash} ({Bytes:N0} bytes)", work.Label,
            work.CellKey[..12], stored.Sha256[..12], stored.Bytes);
        return stored;
    }

    /// <summary>Removes a staging folder that was not moved into the store (the cell failed or stopped).</summary>
    public static void Discard(string? staging)
    {
        if (staging is not null && Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }
    }
}
