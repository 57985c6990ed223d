using System.Diagnostics;
using Orchestrator.Core.Cells;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;

namespace Orchestrator.Training;

/// <summary>
/// Runs one cell end to end on the calling thread: data → subsample manifest → base model → method → train → decode →
/// score. Datasets (and the word-level vocabularies of randomly initialised presets) are cached per content hash, bases in
/// a <see cref="BaseModelCache"/>, so a worker loads each once (<see cref="TrialInputs"/>); packs train in a
/// <see cref="PackRunner"/>, and every trial ends in a <see cref="TrialFinisher"/> (decode, score, <see cref="TrialProvenance"/>).
/// <para>
/// Bases: a preset without pretraining is built from <see cref="ModelIdentity.InitSeed"/> with a word-level vocabulary of
/// the dataset's training pool (the old demo); a checkpoint folder or a pretrained preset comes from the cache, with its own
/// tokenizer (GPT-2 BPE). Methods that never change base weights train on a model whose frozen parameters alias the cached
/// base; the others on a private copy.
/// </para>
/// <para>
/// Decoding: <c>greedy</c> or <c>beam</c> (beam size from the cell, length penalty 1), max/min new tokens from the cell,
/// newline tokens banned (PROTOCOL), cut at the first end token.
/// </para>
/// </summary>
public sealed class TrialRunner
{
    public const string Greedy = "greedy";
    public const string Beam = "beam";

    /// <summary>The decoding strategies a spec may name.</summary>
    public static IReadOnlyList<string> DecodingStrategies { get; } = [Greedy, Beam];

    private readonly TrialInputs _inputs;
    private readonly TrialFinisher _finisher;
    private readonly PackRunner _packs;

    public TrialRunner(TrialScorer scorer, BaseModelCache? bases = null)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        _inputs = new TrialInputs(bases ?? new BaseModelCache());
        _finisher = new TrialFinisher(scorer);
        _packs = new PackRunner(_inputs, _finisher);
    }

    /// <summary>The bases this runner loads (shared by all its trials).</summary>
    public BaseModelCache Bases => _inputs.Bases;

    /// <summary>Decoding batch size (sources per batch; beams multiply it).</summary>
    public int DecodeBatchSize
    {
        get => _finisher.DecodeBatchSize;
        init => _finisher.DecodeBatchSize = value;
    }

    public TrialOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt,
        IProgress<TrainProgress>? progress, CancellationToken ct, TrialArtifacts? artifacts = null)
    {
        artifacts ??= TrialArtifacts.None;
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentNullException.ThrowIfNull(metrics);
        var clock = Stopwatch.StartNew();
        using var memory = new PeakMemorySampler();
        TorchRuntime.EnsureAvailable();

        TrialData data = _inputs.LoadData(cell);
        using IPeftMethod fresh = PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options");
        TrialBase trialBase = _inputs.LoadBase(cell, data.Dataset, shareWeights: !fresh.TrainsBaseWeights, ct);
        using (trialBase.Model)
        {
            double setup = clock.Elapsed.TotalSeconds;
            if (cell.ReusesTraining)
            {
                // Another split's cell trained this model (dataset.share_training): load it, then only decode and score.
                if (artifacts.Dependencies.Count != 1)
                {
                    throw new InvalidOperationException(
                        $"cell {cell.Label} reuses the trained model of another split's cell, but {artifacts.Dependencies.Count} trained models were given (expected 1)");
                }

                using IPeftMethod trained = PeftCheckpoint.Load(trialBase.Model, artifacts.Dependencies[0].Directory, new PeftContext(cell.Seed, trialBase.Tokenizer));
                var none = new TrainReport([], [], 0, double.NaN, 0, 0);
                return _finisher.Finish(cell, data, trained, trialBase, none, metrics, workerId, attempt, clock, memory, setup, packing: null, ct,
                    artifacts.Dependencies.Select(d => d.CellKey).ToList());
            }

            IPeftMethod method = fresh;
            TrainReport report;
            TrialPackingProvenance? packing = null;
            if (CanPack(cell) && (TrialInputs.BaseDropoutOf(cell) ?? trialBase.Model.Shape.Dropout) == 0)
            {
                // A pack of one, padded as in any pack of this group: the same bits as the cell trained with other cells.
                int padLength = _inputs.PadLength(cell, data.Dataset, trialBase);
                var member = new PackMember(cell.Key, method, data.Train, data.Dev, TrialInputs.OptionsFor(cell), progress, ct) { PadLength = padLength };
                var queue = new Queue<PackMember>([member]);
                new PackedTrainer(trialBase.Model, trialBase.Tokenizer).Run(1, () => queue.Count > 0 ? queue.Dequeue() : null, _ => { }, ct);
                if (member.Error is OperationCanceledException && ct.IsCancellationRequested) ct.ThrowIfCancellationRequested();
                report = member.Report ?? throw member.Error ?? new InvalidOperationException($"cell {cell.Label} did not finish training");
                packing = new TrialPackingProvenance(Packed: false, PadLength: padLength);
            }
            else
            {
                report = new CausalLmTrainer(trialBase.Model, trialBase.Tokenizer, method) { Dependencies = artifacts.Dependencies }
                    .Train(data.Train, data.Dev, TrialInputs.OptionsFor(cell), progress, ct);
            }

            if (artifacts.SaveTo is not null)
            {
                PeftCheckpoint.Save(method, artifacts.SaveTo);
            }

            return _finisher.Finish(cell, data, method, trialBase, report, metrics, workerId, attempt, clock, memory, setup, packing, ct,
                artifacts.Dependencies.Select(d => d.CellKey).ToList());
        }
    }

    /// <summary>
    /// Loads a stored cell's trained method as its trial had it: the cell's base, built exactly as for training (a preset with
    /// the word-level vocabulary of the dataset's training pool, or the cached folder/pretrained base), and the method from
    /// <paramref name="methodDirectory"/> (a <see cref="PeftCheckpoint"/> folder: the cell's artifact). Dispose the result.
    /// </summary>
    public TrainedCell LoadTrained(CellDefinition cell, string methodDirectory, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentNullException.ThrowIfNull(methodDirectory);
        TorchRuntime.EnsureAvailable();
        TrialData data = _inputs.LoadData(cell);
        bool shareWeights;
        using (IPeftMethod fresh = PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options"))
        {
            shareWeights = !fresh.TrainsBaseWeights;
        }

        TrialBase trialBase = _inputs.LoadBase(cell, data.Dataset, shareWeights, ct);
        try
        {
            IPeftMethod method = PeftCheckpoint.Load(trialBase.Model, methodDirectory, new PeftContext(cell.Seed, trialBase.Tokenizer));
            string? baseDirectory = trialBase.Description is FolderBaseProvenance folder ? folder.Directory : null;
            return new TrainedCell(trialBase.Model, method, baseDirectory);
        }
        catch
        {
            trialBase.Model.Dispose();
            throw;
        }
    }

    /// <summary>True when <paramref name="cell"/>'s method can train in a pack (<see cref="RunPack"/>) with this runner.</summary>
    public static bool CanPack(CellDefinition cell)
    {
        ArgumentNullException.ThrowIfNull(cell);
        try
        {
            if (cell.Dependencies.Count > 0)
            {
                return false; // trained alone, with the artifacts it needs
            }

            if (TrialInputs.BaseDropoutOf(cell) > 0)
            {
                return false; // its base dropout masks need a stream of its own
            }

            using var method = PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options");
            return method is IPackableMethod { Packable: true };
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Trains cells of one pack group (<see cref="CellDefinition.PackGroup"/>) together on one shared frozen base
    /// (<see cref="PackedTrainer"/>), at most <paramref name="capacity"/> at a time: <paramref name="next"/> is asked for
    /// another cell whenever a place is free (null: none now), and <paramref name="done"/> hears each cell as soon as it has
    /// been trained, decoded and scored (or failed), on this thread. Each outcome is what <see cref="Run"/> would give, and
    /// its provenance names the cells it shared steps with.
    /// </summary>
    public void RunPack(int capacity, Func<PackRequest?> next, Action<PackRequest, TrialOutcome?, Exception?> done, CancellationToken ct) =>
        _packs.Run(capacity, next, done, ct);

    /// <summary>
    /// Chooses how many cells of <paramref name="cell"/>'s pack group to train at once: times a few packed steps on the
    /// cell's own data for K = 1, 2, 4, … up to <paramref name="max"/> and keeps doubling while trial-steps per second grow
    /// by at least 10%, the step stays under 10 s and the process would keep a quarter of the machine's memory free. Cached
    /// per pack group.
    /// </summary>
    public PackCalibration CalibratePack(CellDefinition cell, int max, CancellationToken ct) => _packs.Calibrate(cell, max, ct);
}

/// <summary>A stored cell's base and its trained method on it (<see cref="TrialRunner.LoadTrained"/>).</summary>
/// <param name="BaseDirectory">The base's folder (a checkpoint or a pretrained preset's cache folder), null for a preset with random weights.</param>
public sealed record TrainedCell(Models.CausalLm Model, IPeftMethod Method, string? BaseDirectory) : IDisposable
{
    public void Dispose()
    {
        Method.Dispose();
        Model.Dispose();
    }
}

