using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.Training.Peft.HuggingFace;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>What <see cref="CellExporter.ExportAsync"/> wrote.</summary>
/// <param name="PeftType">The PEFT type (LORA, IA3, …), or null for a full Hugging Face checkpoint.</param>
/// <param name="Files">The files written, relative to <paramref name="Directory"/>, sorted.</param>
public sealed record CellExport(string CellKey, string Label, string Method, string Directory, string? PeftType, IReadOnlyList<string> Files);

/// <summary>
/// <c>orchestrator export-hf SWEEP CELL --out DIR</c>: loads a stored cell's base (as its trial built it) and its trained
/// method from the artifact store, and writes them with <see cref="HfPeftFormat.Export"/>: a PEFT adapter folder, or a full
/// checkpoint for the methods PEFT has no type for.
/// </summary>
public static class CellExporter
{
    /// <param name="artifactDirectory">The artifact store (null: <c>.orchestrator/artifacts</c>).</param>
    /// <exception cref="ArgumentException">
    /// No such cell, no successful result, no stored trained method, or <paramref name="outDirectory"/> exists and is not empty.
    /// </exception>
    /// <exception cref="NotSupportedException">The method cannot be exported (the reason of <see cref="HfPeftFormat"/>); nothing is written.</exception>
    public static async Task<CellExport> ExportAsync(IResultStore store, string sweepId, string cellKey, string outDirectory,
        string? artifactDirectory = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrWhiteSpace(outDirectory);
        if (File.Exists(outDirectory))
        {
            throw new ArgumentException($"--out {outDirectory} is a file, not a folder");
        }

        if (Directory.Exists(outDirectory) && Directory.EnumerateFileSystemEntries(outDirectory).Any())
        {
            throw new ArgumentException($"--out {outDirectory} exists and is not empty: give a new or empty folder (nothing is overwritten)");
        }

        var (descriptor, _, cell) = await StoredCells.FindSucceededAsync(store, sweepId, cellKey, "to export", ct);

        // A cell that reused another split's training (dataset.share_training) has that cell's trained method.
        string methodKey = cell.ReusesTraining && cell.Dependencies.Count == 1 ? cell.Dependencies[0] : descriptor.CellKey;
        var index = await store.GetArtifactsAsync([methodKey], ct);
        if (!index.TryGetValue(methodKey, out var artifact))
        {
            throw new ArgumentException(
                $"cell {cell.Label} ({descriptor.CellKey[..12]}) kept no trained method: the artifact index holds none for it. " +
                "A sweep keeps a cell's trained method only when a later stage needs it (execution.artifacts: needed, the default); " +
                "run the sweep with `execution: {artifacts: all}` in its spec to keep every cell's (see `orchestrator artifacts list`)");
        }

        var files = new ArtifactStore(artifactDirectory ?? Path.Combine(".orchestrator", "artifacts"));
        string methodDirectory = files.Open(artifact);
        bool created = !Directory.Exists(outDirectory);
        var runner = new CellRunner();
        try
        {
            return await Task.Factory.StartNew(() =>
            {
                using var trained = runner.Trials.LoadTrained(cell, methodDirectory, ct);
                HfPeftFormat.Export(trained.Method, trained.Model, outDirectory, trained.BaseDirectory);
                var written = Directory.EnumerateFiles(outDirectory, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(outDirectory, f)).Order(StringComparer.Ordinal).ToList();
                return new CellExport(descriptor.CellKey, cell.Label, cell.Method, Path.GetFullPath(outDirectory),
                    HfPeftFormat.PeftTypeOf(trained.Method), written);
            }, ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch
        {
            if (created && Directory.Exists(outDirectory)) Directory.Delete(outDirectory, recursive: true);
            throw;
        }
    }
}
