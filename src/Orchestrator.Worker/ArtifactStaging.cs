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

    /// <summary>The trained methods <paramref name="work"/> needs and where to save its own; null for a plain cell.</summary>
    public async Task<TrialArtifacts?> PrepareAsync(CellWork work, CancellationToken ct)
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

            dependencies.AddRange(work.Dependencies.Select(k => new PeftDependency(k, Files.Open(index[k]))));
        }

        return new TrialArtifacts(dependencies, work.KeepArtifact ? Files.CreateStaging() : null);
    }

    /// <summary>A staging folder for a packed cell's trained method, or null when it is not kept.</summary>
    public string? StagingFor(CellWork work) => work.KeepArtifact ? Files.CreateStaging() : null;

    /// <summary>Moves a trained method from its staging folder into the artifact store and indexes it (before the lease completes).</summary>
    public async Task StoreAsync(CellWork work, string staged)
    {
        var stored = Files.Put(work.CellKey, ArtifactStore.PeftMethodKind, staged);
        await store.RecordArtifactAsync(stored, CancellationToken.None);
        logger.LogInformation("Cell {Label} ({Key}): trained method stored as artifact {Hash} ({Bytes:N0} bytes)", work.Label,
            work.CellKey[..12], stored.Sha256[..12], stored.Bytes);
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
