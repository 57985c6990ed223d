using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Pretraining;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// A frozen base model loaded once, shared read-only by the trials that use it: its config, tokenizer and weights (float32
/// CPU tensors, no gradients). <see cref="CreateModel"/> gives each trial its own <see cref="Gpt2Model"/>; with
/// <c>shareWeights</c> its parameters alias these tensors (no copy: for methods that never change base weights), otherwise
/// they are copies.
/// </summary>
public sealed class LoadedBase : IDisposable
{
    private readonly Dictionary<string, Tensor> _weights;

    private readonly Func<CausalLm> _newModel;

    internal LoadedBase(string hash, string directory, Func<CausalLm> newModel, ModelShape shape, ITextTokenizer tokenizer,
        Dictionary<string, Tensor> weights, double loadSeconds, PretrainReport? pretraining)
    {
        Hash = hash;
        Directory = directory;
        _newModel = newModel;
        Shape = shape;
        Tokenizer = tokenizer;
        _weights = weights;
        LoadSeconds = loadSeconds;
        Pretraining = pretraining;
    }

    /// <summary>The base's identity (<see cref="ModelIdentity.ContentHash"/>).</summary>
    public string Hash { get; }

    /// <summary>The model folder it was loaded from.</summary>
    public string Directory { get; }

    /// <summary>Sizes and family (GPT-2 or Llama).</summary>
    public ModelShape Shape { get; }

    public ITextTokenizer Tokenizer { get; }

    /// <summary>Seconds spent getting it ready (pretraining included when this process pretrained it).</summary>
    public double LoadSeconds { get; }

    /// <summary>The pretraining report of a base the project pretrained (null for other folders).</summary>
    public PretrainReport? Pretraining { get; }

    /// <summary>The weights, by parameter name (do not modify or dispose).</summary>
    public IReadOnlyDictionary<string, Tensor> Weights => _weights;

    /// <summary>
    /// A model with the base's weights for one trial (dispose it). <paramref name="shareWeights"/>: the parameters alias the
    /// shared tensors, so the trial must never change them (frozen-base methods); otherwise they are private copies.
    /// </summary>
    public CausalLm CreateModel(bool shareWeights)
    {
        var model = _newModel();
        try
        {
            if (shareWeights)
            {
                var parameters = model.named_parameters().ToList();
                var problems = parameters.Where(p => !_weights.TryGetValue(p.name, out var t) || !t.shape.SequenceEqual(p.parameter.shape))
                    .Select(p => p.name).ToList();
                if (problems.Count > 0 || parameters.Count != _weights.Count)
                {
                    // Let the copying path produce the detailed message.
                    ModelCheckpoint.CopyWeights(model, _weights, Directory);
                }

                using var noGrad = no_grad();
                foreach (var (name, parameter) in parameters)
                {
                    parameter.set_(_weights[name]); // in place: returns the parameter itself
                }
            }
            else
            {
                ModelCheckpoint.CopyWeights(model, _weights, Directory);
            }

            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (Tensor t in _weights.Values) t.Dispose();
        _weights.Clear();
    }
}

/// <summary>
/// The worker's base-model cache: each base (a local checkpoint folder, or a preset pretrained by recipe) is loaded once per
/// process and shared read-only by every trial that uses it. Pretrained bases are made on first use (see
/// <see cref="PretrainedBases"/>) under <see cref="DataDirectory"/>. Thread-safe: concurrent trials wait for one load.
/// </summary>
public sealed class BaseModelCache : IDisposable
{
    /// <summary>Environment variable naming the data directory (pretrained bases go to its <c>bases/</c> folder).</summary>
    public const string DataDirectoryEnvironmentVariable = "ORCHESTRATOR_DATA_DIR";

    private readonly ConcurrentDictionary<string, Lazy<Task<LoadedBase>>> _bases = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _lifetime = new();
    private readonly string? _dataDirectory;

    /// <param name="dataDirectory">Where pretrained bases are cached; null: <see cref="DefaultDataDirectory"/> at the time of use.</param>
    public BaseModelCache(string? dataDirectory = null)
    {
        _dataDirectory = dataDirectory;
    }

    /// <summary>
    /// The process's data directory for caches when none is given: settable (the CLI sets it from <c>--data-dir</c>), else
    /// <see cref="DataDirectoryEnvironmentVariable"/>, else <c>.orchestrator</c> in the working directory.
    /// </summary>
    public static string DefaultDataDirectory { get; set; } =
        Environment.GetEnvironmentVariable(DataDirectoryEnvironmentVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : ".orchestrator";

    public string DataDirectory => _dataDirectory ?? DefaultDataDirectory;

    /// <summary>Receives one line when a base is pretrained or loaded (e.g. the worker's log).</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Number of bases loaded (or loading) in this process.</summary>
    public int Count => _bases.Count;

    /// <summary>
    /// The base of a checkpoint-folder or pretrained identity (presets without pretraining are built per trial instead).
    /// <para>
    /// The load (and a pretraining run, which may take minutes) runs on its own thread and belongs to the cache, not to the
    /// caller: <paramref name="cancellationToken"/> (a cell's lease) only stops this caller's wait, so a cell that loses its
    /// lease does not throw away a half-finished pretraining; the next cell waits for the same run. A failed load is
    /// forgotten, so a later call tries again.
    /// </para>
    /// </summary>
    /// <exception cref="ArgumentException">A preset identity without pretraining.</exception>
    /// <exception cref="FormatException">
    /// The folder changed since the sweep was planned (its hash differs), is malformed, or its tokenizer's begin token is not
    /// the one the identity records (a cell planned before begin tokens were added).
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public LoadedBase Get(ModelIdentity identity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(identity);
        if (identity.Path is null)
        {
            throw new ArgumentException($"Preset '{identity.Preset}' without pretraining is built per trial, not cached.", nameof(identity));
        }

        var lazy = _bases.GetOrAdd(identity.ContentHash, _ => new Lazy<Task<LoadedBase>>(() => Task.Factory.StartNew(
            () => Load(identity, _lifetime.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
        Task<LoadedBase> load = lazy.Value;
        try
        {
            load.Wait(cancellationToken);
        }
        catch (AggregateException e) when (load.IsFaulted || load.IsCanceled)
        {
            _bases.TryRemove(new KeyValuePair<string, Lazy<Task<LoadedBase>>>(identity.ContentHash, lazy));
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException ?? e);
        }

        LoadedBase loaded = load.Result;
        if (loaded.Tokenizer.BeginToken != identity.BeginToken)
        {
            string Named(int? id) => id is { } v ? $"begin token {v}" : "no begin token";
            throw new FormatException(
                $"Base model folder {identity.Path}: its tokenizer adds {Named(loaded.Tokenizer.BeginToken)} but the cell was planned with {Named(identity.BeginToken)} (planned by an older version); resubmit the spec.");
        }

        return loaded;
    }

    private LoadedBase Load(ModelIdentity identity, CancellationToken cancellationToken)
    {
        TorchRuntime.EnsureAvailable();
        var clock = Stopwatch.StartNew();
        string directory;
        if (PretrainRecipe.TryFromIdentity(identity, out PretrainRecipe? recipe))
        {
            directory = PretrainedBases.Ensure(recipe, DataDirectory, Log, null, cancellationToken);
        }
        else
        {
            directory = identity.Path!;
            if (!System.IO.Directory.Exists(directory))
            {
                throw new DirectoryNotFoundException($"Base model folder not found on this machine: {directory}");
            }

            string hash = ContentHash.OfDirectory(directory);
            if (hash != identity.ContentHash)
            {
                throw new FormatException(
                    $"Base model folder {directory} changed since the sweep was planned (content hash {hash[..12]}, expected {identity.ContentHash[..12]}); resubmit the spec.");
            }
        }

        LoadedBase loaded = LlamaCheckpoint.IsLlamaFolder(directory)
            ? LoadLlama(identity.ContentHash, directory, clock)
            : LoadGpt2(identity.ContentHash, directory, clock);
        Log?.Invoke($"Loaded base {identity.ContentHash[..12]} ({loaded.Shape.FamilyName}, {loaded.Shape.Layers} layers × {loaded.Shape.Width}, vocabulary {loaded.Shape.VocabSize}) from {directory} in {loaded.LoadSeconds:F1} s");
        return loaded;
    }

    private static LoadedBase LoadGpt2(string hash, string directory, Stopwatch clock)
    {
        Gpt2Config config = Gpt2Config.FromJson(File.ReadAllText(Path.Combine(directory, ModelCheckpoint.ConfigFile), Encoding.UTF8));
        ITextTokenizer tokenizer = TokenizerFiles.Load(directory);
        CheckVocabulary(directory, tokenizer, config.VocabSize);
        Dictionary<string, Tensor> weights = ModelCheckpoint.ReadWeights(Path.Combine(directory, ModelCheckpoint.WeightsFile));
        foreach (Tensor t in weights.Values) t.requires_grad = false;
        return new LoadedBase(hash, directory, () => new Gpt2Model(config), config, tokenizer, weights, clock.Elapsed.TotalSeconds,
            BasePretrainer.ReadReport(directory));
    }

    /// <summary>
    /// A Llama-family folder: read once into a model (tensor by tensor, converted to float32), whose parameters become the
    /// shared weights; its tokenizer (tokenizer.json or tokenizer.model) with the checkpoint's end ids. Training and decoding
    /// use the same format as GPT-2 bases (source, separator, target, then the checkpoint's first end id), after the begin token
    /// the folder's tokenizer adds, if it adds one.
    /// </summary>
    private static LoadedBase LoadLlama(string hash, string directory, Stopwatch clock)
    {
        LlamaConfig config = LlamaCheckpoint.ReadConfig(directory);
        ITextTokenizer tokenizer = LlamaCheckpoint.LoadTokenizer(directory, config);
        CheckVocabulary(directory, tokenizer, config.VocabSize);
        using var read = new LlamaModel(config);
        LlamaCheckpoint.LoadWeights(read, directory);
        var weights = read.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach(), StringComparer.Ordinal);
        return new LoadedBase(hash, directory, () => new LlamaModel(config), config, tokenizer, weights, clock.Elapsed.TotalSeconds, null);
    }

    private static void CheckVocabulary(string directory, ITextTokenizer tokenizer, int embeddings)
    {
        if (tokenizer.VocabSize > embeddings)
        {
            throw new FormatException($"{directory}: the tokenizer has {tokenizer.VocabSize} ids but config.json only {embeddings} embeddings.");
        }
    }

    public void Dispose()
    {
        _lifetime.Cancel();
        foreach (var lazy in _bases.Values)
        {
            if (!lazy.IsValueCreated) continue;
            try
            {
                lazy.Value.Wait();
                lazy.Value.Result.Dispose();
            }
            catch (AggregateException)
            {
                // A load that failed or was cancelled by this Dispose holds nothing.
            }
        }

        _bases.Clear();
        _lifetime.Dispose();
    }
}
