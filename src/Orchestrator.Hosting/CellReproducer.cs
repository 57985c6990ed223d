using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.Training;
using Orchestrator.Training.Peft;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>What rerunning one stored cell gave, next to what the database holds.</summary>
/// <param name="Label">The cell's label (method, size, subsample, seed, split).</param>
/// <param name="Metrics">Per metric: the stored value and the rerun's value.</param>
/// <param name="OutputsCompared">Decoded outputs compared; <paramref name="OutputsDiffering"/> of them differ.</param>
/// <param name="WasPacked">The stored result was trained in a pack (the rerun trains alone: equal to float tolerance only).</param>
/// <param name="StoredDevice">The device the stored result ran on, as its worker described it (e.g. "cpu, 1 thread, torch 2.10").</param>
/// <param name="Threads">The torch threads of the rerun.</param>
public sealed record Reproduction(string CellKey, string Label, IReadOnlyList<(string Metric, double Stored, double Rerun)> Metrics,
    int OutputsCompared, int OutputsDiffering, bool WasPacked, double Seconds)
{
    public string StoredDevice { get; init; } = "";

    public int Threads { get; init; }

    /// <summary>Every metric bit-for-bit equal and every output identical.</summary>
    public bool Exact => OutputsDiffering == 0 && Metrics.All(m => m.Stored.Equals(m.Rerun));
}

/// <summary>
/// Reruns one stored cell from its definition, alone, in this process (data → manifest → base → method → train → decode →
/// score, exactly as a worker does) and compares metrics and decoded outputs with the stored result. Writes nothing.
/// </summary>
public static class CellReproducer
{
    /// <param name="cellKey">The cell's key or a unique prefix of it (at least 6 characters).</param>
    /// <exception cref="ArgumentException">No such cell in the sweep, an ambiguous prefix, or no successful result to compare with.</exception>
    /// <param name="metrics">The sweep's metrics (spec names such as <c>bleu</c>, <c>rouge</c>).</param>
    /// <param name="threads">
    /// Torch threads for the rerun. Null: the stored result's own count (from its device description), since on CPU the
    /// thread count changes the order of floating-point sums and so the exact numbers; else the process default.
    /// </param>
    /// <param name="artifactDirectory">
    /// The artifact store, for a cell of a later stage (or one reusing another split's training): the trained methods it needs
    /// are taken from there, checked against their hashes. Null: <c>.orchestrator/artifacts</c>.
    /// </param>
    public static async Task<Reproduction> ReproduceAsync(IResultStore store, string sweepId, string cellKey, IReadOnlyList<string> metrics,
        CancellationToken ct = default, string? artifactDirectory = null, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        if (cellKey.Length < 6)
        {
            throw new ArgumentException($"cell key '{cellKey}' is too short: give at least 6 characters of it (see `orchestrator export`)");
        }

        var cells = await store.GetSweepCellsAsync(sweepId, ct);
        var matches = cells.Where(c => c.Cell.CellKey.StartsWith(cellKey, StringComparison.OrdinalIgnoreCase)).ToList();
        if (matches.Count == 0)
        {
            throw new ArgumentException($"no cell of sweep {sweepId} has a key starting with '{cellKey}'");
        }

        if (matches.Count > 1)
        {
            throw new ArgumentException($"'{cellKey}' matches {matches.Count} cells of sweep {sweepId}: give more of the key");
        }

        var (descriptor, stored) = matches[0];
        var cell = CellDefinition.FromJson(descriptor.CellJson);
        if (stored is not { Status: CellStatus.Succeeded })
        {
            throw new ArgumentException($"cell {cell.Label} ({descriptor.CellKey[..12]}) has no successful result to compare with");
        }

        TrialArtifacts? artifacts = null;
        if (cell.Dependencies.Count > 0)
        {
            var files = new ArtifactStore(artifactDirectory ?? Path.Combine(".orchestrator", "artifacts"));
            var index = await store.GetArtifactsAsync(cell.Dependencies, ct);
            var missing = cell.Dependencies.Where(k => !index.ContainsKey(k)).ToList();
            if (missing.Count > 0)
            {
                throw new ArgumentException($"cell {cell.Label} needs {missing.Count} trained method(s) that the artifact index does not hold " +
                                            $"({string.Join(", ", missing.Select(k => k[..12]))}): they were collected or never kept");
            }

            artifacts = new TrialArtifacts(cell.Dependencies.Select(k => new PeftDependency(k, files.Open(index[k]))).ToList());
        }

        TorchRuntime.EnsureAvailable(threads ?? TorchRuntime.ThreadsOf(stored.Device));
        int used = TorchRuntime.Threads;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var runner = new CellRunner();
        var outcome = await Task.Factory.StartNew(() => runner.Run(cell, metrics, "reproduce", stored.Attempt, null, ct, artifacts),
            ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var compared = stored.Metrics.Keys.Order(StringComparer.Ordinal)
            .Select(m => (m, stored.Metrics[m], outcome.Metrics.TryGetValue(m, out var v) ? v : double.NaN)).ToList();
        int n = Math.Min(stored.Outputs.Count, outcome.Outputs.Count);
        int differing = Enumerable.Range(0, n).Count(i => stored.Outputs[i] != outcome.Outputs[i]) + Math.Abs(stored.Outputs.Count - outcome.Outputs.Count);
        return new Reproduction(descriptor.CellKey, cell.Label, compared, Math.Max(stored.Outputs.Count, outcome.Outputs.Count), differing,
            PackingProvenance.Read(stored.ProvenanceJson).WithOthers, clock.Elapsed.TotalSeconds)
        {
            StoredDevice = stored.Device,
            Threads = used,
        };
    }
}
