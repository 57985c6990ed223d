using Orchestrator.Core.Cells;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.Training;
using Orchestrator.Training.Peft;
using Orchestrator.Worker;

namespace Orchestrator.Hosting;

/// <summary>What rerunning one stored cell gave, next to what the database holds.</summary>
/// <param name="Label">The cell's label (method, size, subsample, seed, split).</param>
/// <param name="Metrics">
/// Per metric the stored result holds: the stored value and the rerun's. The rerun is scored with every metric that produces
/// a stored value (a <c>rescore</c> may have added metrics to the stored result), so like is compared with like.
/// </param>
/// <param name="OutputsCompared">Decoded outputs compared; <paramref name="OutputsDiffering"/> of them differ.</param>
/// <param name="WasPacked">The stored result was trained with other cells in a pack.</param>
public sealed record Reproduction(string CellKey, string Label, IReadOnlyList<(string Metric, double Stored, double Rerun)> Metrics,
    int OutputsCompared, int OutputsDiffering, bool WasPacked, double Seconds)
{
    /// <summary>The device the stored result ran on, as its worker described it (e.g. "cpu, 1 thread, torch 2.10").</summary>
    public string StoredDevice { get; init; } = "";

    /// <summary>The torch threads of the rerun.</summary>
    public int Threads { get; init; }

    /// <summary>Stored metrics that no metric of the suite produces (so the rerun cannot score them); not compared.</summary>
    public IReadOnlyList<string> NotCompared { get; init; } = [];

    /// <summary>Training numbers from the provenance (final training loss, best dev loss, best step): stored and rerun, as written.</summary>
    public IReadOnlyList<(string Field, string Stored, string Rerun)> Training { get; init; } = [];

    /// <summary>The first output that differs: its index, the stored text and the rerun's; null when all are identical.</summary>
    public (int Index, string Stored, string Rerun)? FirstDifferentOutput { get; init; }

    /// <summary>Why the numbers may differ, from the provenance (null when reproduced exactly).</summary>
    public string? Explanation { get; init; }

    /// <summary>Every compared metric bit-for-bit equal and every output identical.</summary>
    public bool Exact => OutputsDiffering == 0 && Metrics.All(m => m.Stored.Equals(m.Rerun));

    /// <summary>One line per difference: metrics with both values, outputs (how many, the first one), training numbers.</summary>
    public IReadOnlyList<string> Differences()
    {
        var lines = new List<string>();
        foreach (var (metric, stored, rerun) in Metrics.Where(m => !m.Stored.Equals(m.Rerun)))
        {
            lines.Add(FormattableString.Invariant($"{metric}: stored {stored:R}, rerun {rerun:R} (difference {rerun - stored:G3})"));
        }

        if (FirstDifferentOutput is { } o)
        {
            lines.Add($"outputs: {OutputsDiffering} of {OutputsCompared} differ; the first is #{o.Index}: stored \"{Cut(o.Stored)}\", rerun \"{Cut(o.Rerun)}\"");
        }

        foreach (var (field, stored, rerun) in Training.Where(t => t.Stored != t.Rerun))
        {
            lines.Add($"{field}: stored {stored}, rerun {rerun}");
        }

        return lines;
    }

    private static string Cut(string text) => text.Length <= 80 ? text : text[..77] + "...";
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
        var (descriptor, stored, cell) = await StoredCells.FindSucceededAsync(store, sweepId, cellKey, "to compare with", ct);

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

        // Score the rerun with every metric whose values the stored result holds: a rescore may have added (or replaced) some.
        var storedNames = stored.Metrics.Keys.ToHashSet(StringComparer.Ordinal);
        var scoring = MetricSuite.Names.Where(m => MetricSuite.OutputsOf(m).Any(storedNames.Contains)).ToList();
        if (scoring.Count == 0) scoring = metrics.ToList();
        var producible = scoring.SelectMany(MetricSuite.OutputsOf).ToHashSet(StringComparer.Ordinal);

        // On the thread count the cell was trained on (recorded with it), unless told otherwise; older results without it
        // rerun on the process's count.
        int used = threads ?? TorchRuntime.ThreadsOf(stored.Device) ?? TorchRuntime.Threads;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var runner = new CellRunner();
        var outcome = await Task.Factory.StartNew(() =>
        {
            TorchRuntime.PinCurrentThread(used);
            return runner.Run(cell, scoring, "reproduce", stored.Attempt, null, ct, artifacts);
        }, ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var compared = stored.Metrics.Keys.Where(producible.Contains).Order(StringComparer.Ordinal)
            .Select(m => (m, stored.Metrics[m], outcome.Metrics.TryGetValue(m, out var v) ? v : double.NaN)).ToList();
        int n = Math.Min(stored.Outputs.Count, outcome.Outputs.Count);
        int differing = Enumerable.Range(0, n).Count(i => stored.Outputs[i] != outcome.Outputs[i]) + Math.Abs(stored.Outputs.Count - outcome.Outputs.Count);
        int first = Enumerable.Range(0, Math.Max(stored.Outputs.Count, outcome.Outputs.Count))
            .FirstOrDefault(i => i >= n || stored.Outputs[i] != outcome.Outputs[i], -1);
        string OutputAt(IReadOnlyList<string> outputs, int i) => i < outputs.Count ? outputs[i] : "(none)";

        using var storedProvenance = System.Text.Json.JsonDocument.Parse(stored.ProvenanceJson);
        using var rerunProvenance = System.Text.Json.JsonDocument.Parse(outcome.ProvenanceJson);
        string Field(System.Text.Json.JsonDocument doc, string name) =>
            doc.RootElement.TryGetProperty(name, out var value) ? value.GetRawText() : "(not recorded)";
        var training = new[] { "final_train_loss", "best_dev_loss", "best_step", "steps" }
            .Select(f => (f, Field(storedProvenance, f), Field(rerunProvenance, f))).ToList();
        var packing = PackingProvenance.Read(stored.ProvenanceJson);
        var result = new Reproduction(descriptor.CellKey, cell.Label, compared, Math.Max(stored.Outputs.Count, outcome.Outputs.Count), differing,
            packing.WithOthers, clock.Elapsed.TotalSeconds)
        {
            StoredDevice = stored.Device,
            Threads = used,
            NotCompared = stored.Metrics.Keys.Where(k => !producible.Contains(k)).Order(StringComparer.Ordinal).ToList(),
            Training = training,
            FirstDifferentOutput = first < 0 ? null : (first, OutputAt(stored.Outputs, first), OutputAt(outcome.Outputs, first)),
        };
        return result.Exact ? result : result with { Explanation = Explain(cell, storedProvenance.RootElement, rerunProvenance.RootElement, stored.Device, used) };
    }

    private static string Explain(CellDefinition cell, System.Text.Json.JsonElement stored, System.Text.Json.JsonElement rerun, string storedDevice, int threads)
    {
        static string? Text(System.Text.Json.JsonElement e, string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
        bool padded = stored.TryGetProperty("packing", out var packing) && packing.ValueKind == System.Text.Json.JsonValueKind.Object
                      && packing.TryGetProperty("pad_length", out _);
        if (TrialRunner.CanPack(cell) && !padded)
        {
            return "the stored result was trained by an earlier version, which padded a pack's rows to its partners' longest row " +
                   "(and trained such cells alone with another trainer); this version trains a cell the same alone and in any pack, " +
                   "so it cannot replay that result bit for bit (see docs/packing.md)";
        }

        string? storedCode = Text(stored, "code_version"), rerunCode = Text(rerun, "code_version");
        if (storedCode is not null && storedCode != rerunCode)
        {
            return $"the stored result was trained by code version {storedCode}, this is {rerunCode}";
        }

        if (TorchRuntime.ThreadsOf(storedDevice) is { } storedThreads && storedThreads != threads)
        {
            return $"the stored result ran on {storedThreads} thread(s), the rerun on {threads} (the order of float sums depends on it)";
        }

        return $"same code and thread count: another machine, CPU or torch build? (stored on: {storedDevice}; rerun on: {Text(rerun, "device") ?? TorchRuntime.Describe()})";
    }
}
