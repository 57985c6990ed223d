using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Manifests;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training;

/// <summary>Scores decoded outputs against their references with one named metric (e.g. the worker's metric suite).</summary>
public delegate IEnumerable<(string Name, double Value)> TrialScorer(
    string metric, IReadOnlyList<string> outputs, IReadOnlyList<IReadOnlyList<string>> references);

/// <summary>One cell for <see cref="TrialRunner.RunPack"/>, with what its outcome needs and its own cancellation (its lease).</summary>
public sealed record PackRequest(CellDefinition Cell, IReadOnlyList<string> Metrics, string WorkerId, int Attempt,
    CancellationToken Cancellation, IProgress<TrainProgress>? Progress = null)
{
    /// <summary>Where to save the cell's trained method (a <see cref="PeftCheckpoint"/> folder) once trained; null: not kept.</summary>
    public string? SaveTo { get; init; }
}

/// <summary>The pack size chosen for a pack group and the step times measured for it (seconds per packed step for each K tried).</summary>
public sealed record PackCalibration(int PackSize, IReadOnlyList<(int K, double StepSeconds)> Measured)
{
    public override string ToString() =>
        $"K={PackSize} (" + string.Join(", ", Measured.Select(m => $"K={m.K}: {m.K / m.StepSeconds:F1} trial-steps/s")) + ")";
}

/// <summary>
/// What a trial of a staged sweep exchanges with the artifact store: the trained methods of the cells it depends on (in the
/// order of its cell's <c>needs</c>) and the folder to save its own trained method to (a <see cref="PeftCheckpoint"/>), or null.
/// </summary>
public sealed record TrialArtifacts(IReadOnlyList<PeftDependency> Dependencies, string? SaveTo = null)
{
    public static TrialArtifacts None { get; } = new([]);
}

/// <summary>Seconds spent in each phase of a trial.</summary>
public sealed record TrialTimings(double Setup, double Train, double Decode, double Score);

/// <summary>What one trial (cell) produced: scores, decoded outputs, provenance (JSON), wall time and peak memory.</summary>
/// <param name="PeakMemoryBytes">Largest resident set of the process sampled during the trial (other slots included).</param>
public sealed record TrialOutcome(
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<string> Outputs,
    string ProvenanceJson,
    double WallSeconds,
    long PeakMemoryBytes)
{
    public required TrialTimings Timings { get; init; }

    public required TrainReport Training { get; init; }

    public long TrainableParameters { get; init; }
}

/// <summary>
/// Runs one cell end to end on the calling thread: data → subsample manifest → base model → method → train → decode →
/// score. Datasets (and the word-level vocabularies of randomly initialised presets) are cached per content hash, bases in
/// a <see cref="BaseModelCache"/>, so a worker loads each once.
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

    private static readonly string CodeVersion =
        typeof(TrialRunner).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private readonly ConcurrentDictionary<string, Lazy<LoadedDataset>> _datasets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<WordLevelTokenizer>> _vocabularies = new(StringComparer.Ordinal);
    private readonly TrialScorer _scorer;

    public TrialRunner(TrialScorer scorer, BaseModelCache? bases = null)
    {
        _scorer = scorer ?? throw new ArgumentNullException(nameof(scorer));
        Bases = bases ?? new BaseModelCache();
    }

    /// <summary>The bases this runner loads (shared by all its trials).</summary>
    public BaseModelCache Bases { get; }

    /// <summary>Decoding batch size (sources per batch; beams multiply it).</summary>
    public int DecodeBatchSize { get; init; } = GreedyDecoder.DefaultBatchSize;

    public TrialOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt,
        IProgress<TrainProgress>? progress, CancellationToken ct, TrialArtifacts? artifacts = null)
    {
        artifacts ??= TrialArtifacts.None;
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentNullException.ThrowIfNull(metrics);
        var clock = Stopwatch.StartNew();
        using var memory = new PeakMemorySampler();
        TorchRuntime.EnsureAvailable();

        TrialData data = LoadData(cell);
        using IPeftMethod fresh = PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options");
        TrialBase trialBase = LoadBase(cell, data.Dataset, shareWeights: !fresh.TrainsBaseWeights, ct);
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
                return Finish(cell, data, trained, trialBase, none, metrics, workerId, attempt, clock, memory, setup, packing: null, ct,
                    artifacts.Dependencies.Select(d => d.CellKey).ToList());
            }

            IPeftMethod method = fresh;
            TrainReport report;
            object? packing = null;
            if (CanPack(cell) && (BaseDropoutOf(cell) ?? trialBase.Model.Shape.Dropout) == 0)
            {
                // A pack of one, padded as in any pack of this group: the same bits as the cell trained with other cells.
                int padLength = PadLength(cell, data.Dataset, trialBase);
                var member = new PackMember(cell.Key, method, data.Train, data.Dev, OptionsFor(cell), progress, ct) { PadLength = padLength };
                var queue = new Queue<PackMember>([member]);
                new PackedTrainer(trialBase.Model, trialBase.Tokenizer).Run(1, () => queue.Count > 0 ? queue.Dequeue() : null, _ => { }, ct);
                if (member.Error is OperationCanceledException && ct.IsCancellationRequested) ct.ThrowIfCancellationRequested();
                report = member.Report ?? throw member.Error ?? new InvalidOperationException($"cell {cell.Label} did not finish training");
                packing = new { packed = false, pad_length = padLength };
            }
            else
            {
                report = new CausalLmTrainer(trialBase.Model, trialBase.Tokenizer, method) { Dependencies = artifacts.Dependencies }
                    .Train(data.Train, data.Dev, OptionsFor(cell), progress, ct);
            }

            if (artifacts.SaveTo is not null)
            {
                PeftCheckpoint.Save(method, artifacts.SaveTo);
            }

            return Finish(cell, data, method, trialBase, report, metrics, workerId, attempt, clock, memory, setup, packing, ct,
                artifacts.Dependencies.Select(d => d.CellKey).ToList());
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

            if (BaseDropoutOf(cell) > 0)
            {
                return false; // its base dropout masks need a stream of its own
            }

            using var method = PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options");
            if (IsLlamaFamily(cell.Model) && method is Peft.Shared.PrefixMethodBase or Peft.PromptTuning.PromptTuningMethod)
            {
                // On the Llama family, virtual-token cells trained in a pack matched their run alone in outputs, scores and
                // dev loss but not in the last bits of the training loss; a cell must give the same bits alone and in any pack.
                return false;
            }

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
    public void RunPack(int capacity, Func<PackRequest?> next, Action<PackRequest, TrialOutcome?, Exception?> done, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(done);
        TorchRuntime.EnsureAvailable();
        PackRequest? first = next();
        if (first is null) return;
        string group = first.Cell.PackGroup;
        var clock = Stopwatch.StartNew();
        using var memory = new PeakMemorySampler();
        var members = new Dictionary<PackMember, (PackRequest Request, TrialData Data, Stopwatch Clock)>();
        TrialBase trialBase;
        try
        {
            trialBase = LoadBase(first.Cell, LoadData(first.Cell).Dataset, shareWeights: true, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            done(first, null, e);
            return;
        }

        using (trialBase.Model)
        {
            var trainer = new PackedTrainer(trialBase.Model, trialBase.Tokenizer);
            PackMember? Member(PackRequest request)
            {
                var started = Stopwatch.StartNew();
                try
                {
                    if (request.Cell.PackGroup != group)
                    {
                        throw new ArgumentException($"cell {request.Cell.Label} is not of this pack's group (data, base, method and options must match)");
                    }

                    TrialData data = LoadData(request.Cell);
                    int padLength = PadLength(request.Cell, data.Dataset, trialBase);
                    IPeftMethod method = PeftRegistry.Create(request.Cell.Method, request.Cell.MethodOptions, "method_options");
                    var member = new PackMember(request.Cell.Key, method, data.Train, data.Dev, OptionsFor(request.Cell), request.Progress, request.Cancellation)
                    {
                        PadLength = padLength,
                    };
                    members[member] = (request, data, started);
                    return member;
                }
                catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidOperationException)
                {
                    done(request, null, e);
                    return null;
                }
            }

            PackMember? NextMember()
            {
                PackRequest? request = first ?? next();
                first = null;
                while (request is not null)
                {
                    if (Member(request) is { } member) return member;
                    request = next();
                }

                return null;
            }

            trainer.Run(capacity, NextMember, member =>
            {
                var (request, data, started) = members[member];
                members.Remove(member);
                using (member.Method)
                {
                    if (member.Error is not null)
                    {
                        done(request, null, member.Error);
                        return;
                    }

                    try
                    {
                        var packing = new
                        {
                            packed = true,
                            packed_with = member.PackedWith.Order(StringComparer.Ordinal).ToArray(),
                            largest_pack = member.LargestPack,
                            capacity,
                            pad_length = member.PadLength,
                        };
                        if (request.SaveTo is not null)
                        {
                            PeftCheckpoint.Save(member.Method, request.SaveTo);
                        }

                        // Setup 0: a member's data loading counts as training time (the base is the pack's, loaded once).
                        var outcome = Finish(request.Cell, data, member.Method, trialBase, member.Report!, request.Metrics, request.WorkerId,
                            request.Attempt, started, memory, setup: 0, packing, request.Cancellation);
                        done(request, outcome, null);
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                    {
                        done(request, null, e);
                    }
                }
            }, ct);
        }
    }

    private readonly ConcurrentDictionary<string, Lazy<PackCalibration>> _calibrations = new(StringComparer.Ordinal);

    /// <summary>
    /// Chooses how many cells of <paramref name="cell"/>'s pack group to train at once: times a few packed steps on the
    /// cell's own data for K = 1, 2, 4, … up to <paramref name="max"/> and keeps doubling while trial-steps per second grow
    /// by at least 10%, the step stays under 10 s and the process would keep a quarter of the machine's memory free. Cached
    /// per pack group.
    /// </summary>
    public PackCalibration CalibratePack(CellDefinition cell, int max, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        // Lazy: two slots starting the same group at once calibrate it once.
        return _calibrations.GetOrAdd(cell.PackGroup + "|" + max, _ => new Lazy<PackCalibration>(() => Calibrate(cell, max, ct))).Value;
    }

    private PackCalibration Calibrate(CellDefinition cell, int max, CancellationToken ct)
    {
        TorchRuntime.EnsureAvailable();
        TrialData data = LoadData(cell);
        TrialBase trialBase = LoadBase(cell, data.Dataset, shareWeights: true, ct);
        var measured = new List<(int K, double StepSeconds)>();
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        using (trialBase.Model)
        {
            const int steps = 8;
            int chosen = 1;
            double best = 0;
            for (int k = 1; k <= max; k *= 2)
            {
                long before = Environment.WorkingSet;
                var stamps = new List<double>();
                var clock = Stopwatch.StartNew();
                var options = OptionsFor(cell) with { MaxSteps = steps, WarmupSteps = 0, EvalEvery = 0 };
                int padLength = PadLength(cell, data.Dataset, trialBase);
                var queue = new Queue<PackMember>(Enumerable.Range(0, k).Select(i => new PackMember(
                    $"calibration-{i}", PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options"), data.Train, [],
                    options with { Seed = i }, i == 0 ? new StepClock(stamps, clock) : null, ct) { PadLength = padLength }));
                using var peak = new PeakMemorySampler();
                new PackedTrainer(trialBase.Model, trialBase.Tokenizer).Run(k, () => queue.Count > 0 ? queue.Dequeue() : null, m => m.Method.Dispose(), ct);
                // The median step (the first one, with its warm-up, excluded): robust to a busy moment on a shared machine.
                var intervals = stamps.Zip(stamps.Skip(1), (a, b) => b - a).Order().ToList();
                double stepSeconds = intervals.Count > 0 ? intervals[intervals.Count / 2] : clock.Elapsed.TotalSeconds / steps;
                measured.Add((k, stepSeconds));
                double throughput = k / stepSeconds;
                long perTrial = Math.Max(0, peak.Stop() - before) / k;
                if (throughput < best * 1.1) break;
                best = throughput;
                chosen = k;
                if (stepSeconds > 10 || Environment.WorkingSet + 2L * k * perTrial > available * 3 / 4) break;
            }

            return new PackCalibration(chosen, measured);
        }
    }

    private readonly ConcurrentDictionary<string, Lazy<int>> _padLengths = new(StringComparer.Ordinal);

    /// <summary>
    /// The length every training batch of a packable cell is padded to: the longest encoded example of the dataset's whole
    /// training pool (every split's pool is part of it). It depends only on what the cell's pack group shares (dataset, base),
    /// so a cell's rows have the same shape alone and in any pack, and its numbers do not depend on its partners.
    /// </summary>
    private int PadLength(CellDefinition cell, LoadedDataset data, TrialBase trialBase)
    {
        int positions = trialBase.Model.Shape.Positions;
        string key = data.ContentHash + "|" + cell.Model.ContentHash + "|" + positions;
        return _padLengths.GetOrAdd(key, _ => new Lazy<int>(() =>
        {
            int longest = 1;
            foreach (var example in data.TrainingExamples)
            {
                try
                {
                    longest = Math.Max(longest, CausalLmFormat.Encode(trialBase.Tokenizer, example.Source, example.Target, positions).InputIds.Length);
                }
                catch (ArgumentException)
                {
                    // An example whose prompt alone fills the positions fails the cell that draws it, with its own message.
                }
            }

            return longest;
        })).Value;
    }

    private sealed class StepClock(List<double> stamps, Stopwatch clock) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => stamps.Add(clock.Elapsed.TotalSeconds);
    }

    private static TrainingOptions OptionsFor(CellDefinition cell) => new(
        cell.Training.MaxSteps, cell.Training.BatchSize, cell.Training.LearningRate, cell.Training.WarmupSteps,
        cell.Training.EvalEvery, cell.Seed, cell.Training.WeightDecay)
    {
        BaseDropout = BaseDropoutOf(cell),
        Loss = cell.Training.LossOrDefault switch
        {
            TrainingSpec.LossTokenMean => TrainingLoss.TokenMean,
            TrainingSpec.LossSequenceSum => TrainingLoss.SequenceSum,
            var other => throw new NotSupportedException($"cell {cell.Label}: unknown training loss '{other}' (known: {string.Join(", ", TrainingSpec.Losses)})"),
        },
    };

    /// <summary>The base dropout rate of a cell (0 for <c>eval</c>); null for a cell stored before the setting, which keeps the checkpoint's.</summary>
    private static double? BaseDropoutOf(CellDefinition cell) =>
        cell.Training.BaseDropout is { } d ? TrainingSpec.BaseDropoutRate(TrainingSpec.CanonicalBaseDropout(d)
            ?? throw new NotSupportedException($"cell {cell.Label}: base_dropout '{d}' is neither 'eval' nor a rate in [0, 1)")) : null;

    private sealed record TrialData(LoadedDataset Dataset, SubsampleManifest Manifest, List<TrainingExample> Train, List<TrainingExample> Dev,
        IReadOnlyList<DataEntry> Eval);

    private sealed record TrialBase(ITextTokenizer Tokenizer, CausalLm Model, object Description);

    private TrialData LoadData(CellDefinition cell)
    {
        LoadedDataset data = Dataset(cell.Dataset);
        SubsampleManifest manifest = SubsampleManifest.For(cell, data);
        var train = manifest.TrainIds.Select(data.Example).Select(e => new TrainingExample(e.Source, e.Target)).ToList();
        var dev = manifest.DevIds.Select(data.Example).Select(e => new TrainingExample(e.Source, e.Target)).ToList();
        return new TrialData(data, manifest, train, dev, data.EvalFor(cell.Split));
    }

    /// <summary>A base of the Llama family: a llama preset, or a checkpoint folder whose config names the family.</summary>
    private static bool IsLlamaFamily(ModelIdentity model) =>
        model.Path is { } path ? LlamaCheckpoint.IsLlamaFolder(path) : model.Preset is { } preset && LlamaConfig.IsPreset(preset);

    private TrialBase LoadBase(CellDefinition cell, LoadedDataset data, bool shareWeights, CancellationToken ct)
    {
        if (cell.Model.Path is null)
        {
            string preset = cell.Model.Preset ?? throw new FormatException($"cell {cell.Label}: the model identity has neither a preset nor a path");
            var tokenizer = Vocabulary(cell.Dataset.ContentHash, data);
            CausalLm model = LlamaConfig.IsPreset(preset)
                ? new LlamaModel(LlamaConfig.Preset(preset, tokenizer.VocabSize), cell.Model.InitSeed)
                : new Gpt2Model(Gpt2Config.Preset(preset, tokenizer.VocabSize), cell.Model.InitSeed);
            return new TrialBase(tokenizer, model, new { kind = "preset", preset, init_seed = cell.Model.InitSeed, tokenizer = "word-level (training pool)" });
        }

        LoadedBase loadedBase = Bases.Get(cell.Model, ct);
        return new TrialBase(loadedBase.Tokenizer, loadedBase.CreateModel(shareWeights), new
        {
            kind = PretrainRecipe.TryFromIdentity(cell.Model, out var recipe) ? "pretrained" : "folder",
            directory = loadedBase.Directory,
            preset = cell.Model.Preset,
            pretrain = recipe,
            pretrain_validation_loss = loadedBase.Pretraining?.ValidationLoss,
            tokenizer = loadedBase.Tokenizer.GetType().Name,
            shared_weights = shareWeights,
        });
    }

    /// <summary>Decodes the evaluation set with the trained method, scores it and writes the provenance.</summary>
    private TrialOutcome Finish(CellDefinition cell, TrialData data, IPeftMethod method, TrialBase trialBase, TrainReport report,
        IReadOnlyList<string> metrics, string workerId, int attempt, Stopwatch clock, PeakMemorySampler memory, double setup, object? packing,
        CancellationToken ct, IReadOnlyList<string>? dependencies = null)
    {
        CausalLm model = trialBase.Model;
        ITextTokenizer tokenizer = trialBase.Tokenizer;
        long trainable = method.CountParameters(model.Shape).Trainable;
        double trained = clock.Elapsed.TotalSeconds;

        var sources = data.Eval.Select(e => e.Source).ToList();
        var decoding = new DecodingOptions
        {
            MaxNewTokens = cell.Decoding.MaxNewTokens,
            MinNewTokens = cell.Decoding.MinNewTokens,
            MinLength = cell.Decoding.MinLength ?? 0,
            BeamSize = cell.Decoding.Strategy == Beam ? cell.Decoding.BeamSize : 1,
            LengthPenalty = cell.Decoding.LengthPenalty ?? 1.0,
            Normalization = cell.Decoding.LengthNormalization switch
            {
                null or DecodingSpec.NormalizeNewTokens => LengthNormalization.NewTokens,
                DecodingSpec.NormalizeFullSequence => LengthNormalization.FullSequence,
                var other => throw new NotSupportedException($"cell {cell.Label}: unknown length normalisation '{other}' (known: {string.Join(", ", DecodingSpec.Normalizations)})"),
            },
            BannedTokenIds = TokenizerFiles.NewlineTokenIds(tokenizer),
            BatchSize = DecodeBatchSize,
        };
        IReadOnlyList<string> outputs = cell.Decoding.Strategy switch
        {
            Greedy => GreedyDecoder.Decode(model, tokenizer, sources, decoding, method, ct),
            Beam => BeamSearchDecoder.Decode(model, tokenizer, sources, decoding, method, ct),
            _ => throw new NotSupportedException($"cell {cell.Label}: unknown decoding strategy '{cell.Decoding.Strategy}' (known: {string.Join(", ", DecodingStrategies)})"),
        };
        double decoded = clock.Elapsed.TotalSeconds;

        var references = data.Eval.Select(e => e.References).ToList();
        var scores = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var metric in metrics)
        {
            foreach (var (name, value) in _scorer(metric, outputs, references))
            {
                scores[name] = value;
            }
        }

        double wall = clock.Elapsed.TotalSeconds;
        long peak = memory.Peak;
        var timings = new TrialTimings(setup, trained - setup, decoded - trained, wall - decoded);
        var provenance = new
        {
            code_version = CodeVersion,
            cell_code_version = cell.CodeVersion,
            dataset_hash = cell.Dataset.ContentHash,
            split = cell.Split,
            manifest_hash = data.Manifest.Hash,
            base_model_hash = cell.Model.ContentHash,
            @base = trialBase.Description,
            model = model.Description,
            method = cell.Method,
            method_options = cell.MethodOptions,
            method_options_effective = method.Options,
            trainable_parameters = trainable,
            training = cell.Training,
            decoding = cell.Decoding,
            decoding_banned_tokens = decoding.BannedTokenIds.Count,
            seed = cell.Seed,
            worker = workerId,
            device = TorchRuntime.Describe(),
            attempt,
            wall_seconds = wall,
            timings = new { setup = timings.Setup, train = timings.Train, decode = timings.Decode, score = timings.Score },
            peak_rss_bytes = peak,
            train_examples = data.Train.Count,
            dev_examples = data.Dev.Count,
            eval_inputs = sources.Count,
            steps = report.Steps,
            best_step = report.BestStep,
            best_dev_loss = report.BestDevLoss,
            final_train_loss = report.StepLosses.Count > 0 ? report.StepLosses[^1] : double.NaN,
            train_seconds = report.Seconds,
            train_tokens_per_second = report.TokensPerSecond,
            packing = packing ?? new { packed = false },
            dependencies = dependencies ?? [],
            reused_training = cell.ReusesTraining,
        };
        return new TrialOutcome(scores, outputs, JsonSerializer.Serialize(provenance, ProvenanceJson), wall, peak)
        {
            Timings = timings,
            Training = report,
            TrainableParameters = trainable,
        };
    }

    private static readonly JsonSerializerOptions ProvenanceJson = new()
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The dataset, loaded once per identity; a failed load is not cached (the file may be back on the next attempt).</summary>
    private LoadedDataset Dataset(DatasetIdentity identity)
    {
        var key = JsonSerializer.Serialize(identity);
        var lazy = _datasets.GetOrAdd(key, _ => new Lazy<LoadedDataset>(() => DatasetCatalog.Load(identity)));
        try
        {
            return lazy.Value;
        }
        catch
        {
            _datasets.TryRemove(new KeyValuePair<string, Lazy<LoadedDataset>>(key, lazy));
            throw;
        }
    }

    private WordLevelTokenizer Vocabulary(string datasetHash, LoadedDataset data) =>
        _vocabularies.GetOrAdd(datasetHash, _ => new Lazy<WordLevelTokenizer>(() =>
            WordLevelTokenizer.Build(data.TrainPool.SelectMany(e => e.References.Prepend(e.Source))))).Value;
}

/// <summary>Samples the process's resident set every 50 ms until stopped; reports the largest value seen.</summary>
internal sealed class PeakMemorySampler : IDisposable
{
    private readonly Timer _timer;
    private long _peak;

    public PeakMemorySampler()
    {
        _peak = Environment.WorkingSet;
        _timer = new Timer(_ => Sample(), null, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));
    }

    public long Stop()
    {
        _timer.Change(Timeout.Infinite, Timeout.Infinite);
        Sample();
        return Interlocked.Read(ref _peak);
    }

    /// <summary>The largest value so far (sampling goes on).</summary>
    public long Peak
    {
        get
        {
            Sample();
            return Interlocked.Read(ref _peak);
        }
    }

    public void Dispose() => _timer.Dispose();

    private void Sample()
    {
        long now = Environment.WorkingSet;
        long seen;
        while (now > (seen = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, seen) != seen)
        {
        }
    }
}
