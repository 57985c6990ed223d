namespace Orchestrator.Results.Artifacts;

/// <summary>What a garbage collection of the artifact store removed (or, in a dry run, would remove) and kept.</summary>
public sealed record ArtifactCollection(
    IReadOnlyList<ArtifactRecord> Removed,
    IReadOnlyList<string> OrphanFolders,
    int KeptNeeded,
    int KeptRecent,
    long BytesFreed,
    int StagingFoldersRemoved);

/// <summary>
/// The artifact store's retention rules. An artifact that any stored cell needs (a cell of a later stage lists it in
/// <c>needs</c>, in any sweep) is always kept: <c>rerun-failed</c> or a resubmission may still need it. Any other artifact
/// (kept by <c>execution.artifacts: all</c>, or whose dependants were all deleted) is removed once older than the minimum age.
/// Folders that no index row names (a worker stopped between writing and indexing) and staging folders go too, once older than
/// <see cref="WriteGrace"/>: younger ones may belong to a worker writing or indexing an artifact at this moment.
/// Files are deleted only when no remaining index row shares their content hash.
/// </summary>
public static class ArtifactRetention
{
    /// <summary>How long an unindexed artifact folder or a staging folder is assumed to be in the middle of being written.</summary>
    public static readonly TimeSpan WriteGrace = TimeSpan.FromHours(1);

    public static async Task<ArtifactCollection> CollectAsync(IResultStore index, ArtifactStore files, TimeSpan minimumAge, bool dryRun,
        DateTimeOffset now, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(files);
        var needed = await index.GetNeededCellKeysAsync(ct).ConfigureAwait(false);
        var all = await index.ListArtifactsAsync(ct).ConfigureAwait(false);
        var removed = new List<ArtifactRecord>();
        int keptNeeded = 0, keptRecent = 0;
        foreach (var artifact in all)
        {
            if (needed.Contains(artifact.CellKey))
            {
                keptNeeded++;
            }
            else if (now - artifact.CreatedAt < minimumAge)
            {
                keptRecent++;
            }
            else
            {
                removed.Add(artifact);
            }
        }

        var remaining = all.Except(removed).Select(a => a.Sha256).ToHashSet(StringComparer.Ordinal);
        var indexed = all.Select(a => a.Sha256).ToHashSet(StringComparer.Ordinal);
        var orphans = files.ListHashes().Where(h => !indexed.Contains(h) && files.AgeOf(h) >= WriteGrace).ToList();
        long freed = 0;
        var staging = 0;
        if (!dryRun)
        {
            await index.DeleteArtifactRecordsAsync(removed.Select(a => a.CellKey).ToList(), ct).ConfigureAwait(false);
            foreach (var hash in removed.Select(a => a.Sha256).Distinct(StringComparer.Ordinal).Where(h => !remaining.Contains(h)).Concat(orphans))
            {
                freed += files.Delete(hash);
            }

            staging = files.CleanStaging(WriteGrace);
        }
        else
        {
            freed = removed.Where(a => !remaining.Contains(a.Sha256)).DistinctBy(a => a.Sha256).Sum(a => a.Bytes);
        }

        return new ArtifactCollection(removed, orphans, keptNeeded, keptRecent, freed, staging);
    }
}
