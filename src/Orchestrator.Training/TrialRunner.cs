using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Manifests;
using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training;

/// <summary>Scores decoded outputs against their references with one named metric (e.g. the worker's metric suite).</summary>
public delegate IEnumerable<(string Name, double Value)> TrialScorer(
    string metric, IReadOnlyList<string> outputs, IReadOnlyList<IReadOnlyList<string>> references);

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
        IProgress<TrainProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentNullException.ThrowIfNull(metrics);
        var clock = Stopwatch.StartNew();
        using var memory = new PeakMemorySampler();
        TorchRuntime.EnsureAvailable();

        LoadedDataset data = Dataset(cell.Dataset);
        SubsampleManifest manifest = SubsampleManifest.For(cell, data);
        var train = manifest.TrainIds.Select(data.Example).Select(e => new TrainingExample(e.Source, e.Target)).ToList();
        var dev = manifest.DevIds.Select(data.Example).Select(e => new TrainingExample(e.Source, e.Target)).ToList();
        IReadOnlyList<DataEntry> eval = data.EvalFor(cell.Split);

        using IPeftMethod method = PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options");
        LoadedBase? loadedBase = null;
        ITextTokenizer tokenizer;
        Gpt2Model model;
        object baseDescription;
        if (cell.Model.Path is null)
        {
            string preset = cell.Model.Preset ?? throw new FormatException($"cell {cell.Label}: the model identity has neither a preset nor a path");
            tokenizer = Vocabulary(cell.Dataset.ContentHash, data);
            model = new Gpt2Model(Gpt2Config.Preset(preset, tokenizer.VocabSize), cell.Model.InitSeed);
            baseDescription = new { kind = "preset", preset, init_seed = cell.Model.InitSeed, tokenizer = "word-level (training pool)" };
        }
        else
        {
            loadedBase = Bases.Get(cell.Model, ct);
            tokenizer = loadedBase.Tokenizer;
            model = loadedBase.CreateModel(shareWeights: !method.TrainsBaseWeights);
            baseDescription = new
            {
                kind = PretrainRecipe.TryFromIdentity(cell.Model, out var recipe) ? "pretrained" : "folder",
                directory = loadedBase.Directory,
                preset = cell.Model.Preset,
                pretrain = recipe,
                pretrain_validation_loss = loadedBase.Pretraining?.ValidationLoss,
                tokenizer = tokenizer.GetType().Name,
                shared_weights = !method.TrainsBaseWeights,
            };
        }

        using (model)
        {
            double setup = clock.Elapsed.TotalSeconds;
            var options = new TrainingOptions(
                cell.Training.MaxSteps, cell.Training.BatchSize, cell.Training.LearningRate, cell.Training.WarmupSteps,
                cell.Training.EvalEvery, cell.Seed, cell.Training.WeightDecay);
            TrainReport report = new CausalLmTrainer(model, tokenizer, method).Train(train, dev, options, progress, ct);
            long trainable = method.CountParameters(model.Config).Trainable;
            double trained = clock.Elapsed.TotalSeconds;

            var sources = eval.Select(e => e.Source).ToList();
            var decoding = new DecodingOptions
            {
                MaxNewTokens = cell.Decoding.MaxNewTokens,
                MinNewTokens = cell.Decoding.MinNewTokens,
                BeamSize = cell.Decoding.Strategy == Beam ? cell.Decoding.BeamSize : 1,
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

            var references = eval.Select(e => e.References).ToList();
            var scores = new SortedDictionary<string, double>(StringComparer.Ordinal);
            foreach (var metric in metrics)
            {
                foreach (var (name, value) in _scorer(metric, outputs, references))
                {
                    scores[name] = value;
                }
            }

            double wall = clock.Elapsed.TotalSeconds;
            long peak = memory.Stop();
            var timings = new TrialTimings(setup, trained - setup, decoded - trained, wall - decoded);
            var provenance = new
            {
                code_version = CodeVersion,
                cell_code_version = cell.CodeVersion,
                dataset_hash = cell.Dataset.ContentHash,
                split = cell.Split,
                manifest_hash = manifest.Hash,
                base_model_hash = cell.Model.ContentHash,
                @base = baseDescription,
                model = model.Config,
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
                train_examples = train.Count,
                dev_examples = dev.Count,
                eval_inputs = sources.Count,
                steps = report.Steps,
                best_step = report.BestStep,
                best_dev_loss = report.BestDevLoss,
                final_train_loss = report.StepLosses.Count > 0 ? report.StepLosses[^1] : double.NaN,
                train_seconds = report.Seconds,
                train_tokens_per_second = report.TokensPerSecond,
            };
            return new TrialOutcome(scores, outputs, JsonSerializer.Serialize(provenance, ProvenanceJson), wall, peak)
            {
                Timings = timings,
                Training = report,
                TrainableParameters = trainable,
            };
        }
    }

    private static readonly JsonSerializerOptions ProvenanceJson = new()
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private LoadedDataset Dataset(DatasetIdentity identity) =>
        _datasets.GetOrAdd(JsonSerializer.Serialize(identity), _ => new Lazy<LoadedDataset>(() => DatasetCatalog.Load(identity))).Value;

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
