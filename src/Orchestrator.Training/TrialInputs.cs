using System.Collections.Concurrent;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Manifests;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Pretraining;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training;

/// <summary>A cell's data: the dataset, its subsample manifest, the training and dev examples drawn and the evaluation set.</summary>
internal sealed record TrialData(LoadedDataset Dataset, SubsampleManifest Manifest, List<TrainingExample> Train, List<TrainingExample> Dev,
    IReadOnlyList<DataEntry> Eval);

/// <summary>The base a cell trains on, its tokenizer, and how provenance describes it. The caller disposes the model.</summary>
internal sealed record TrialBase(ITextTokenizer Tokenizer, CausalLm Model, TrialBaseProvenance Description);

/// <summary>
/// What a worker's trials load once and share: datasets and the word-level vocabularies of randomly initialised presets
/// (per content hash), bases (a <see cref="BaseModelCache"/>) and the pad length of each pack group. Also how a cell's
/// settings become training options.
/// </summary>
internal sealed class TrialInputs(BaseModelCache bases)
{
    private readonly ConcurrentDictionary<string, Lazy<LoadedDataset>> _datasets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<WordLevelTokenizer>> _vocabularies = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<int>> _padLengths = new(StringComparer.Ordinal);

    public BaseModelCache Bases { get; } = bases;

    public TrialData LoadData(CellDefinition cell)
    {
        LoadedDataset data = Dataset(cell.Dataset);
        SubsampleManifest manifest = SubsampleManifest.For(cell, data);
        var train = manifest.TrainIds.Select(data.Example).Select(e => new TrainingExample(e.Source, e.Target)).ToList();
        var dev = manifest.DevIds.Select(data.Example).Select(e => new TrainingExample(e.Source, e.Target)).ToList();
        return new TrialData(data, manifest, train, dev, data.EvalFor(cell.Split));
    }

    /// <summary>
    /// A preset without pretraining is built from <see cref="ModelIdentity.InitSeed"/> with a word-level vocabulary of the
    /// dataset's training pool; a checkpoint folder or a pretrained preset comes from the cache with its own tokenizer, its
    /// frozen parameters aliasing the cached base when <paramref name="shareWeights"/>, a private copy otherwise.
    /// </summary>
    public TrialBase LoadBase(CellDefinition cell, LoadedDataset data, bool shareWeights, CancellationToken ct)
    {
        if (cell.Model.Path is null)
        {
            string preset = cell.Model.Preset ?? throw new FormatException($"cell {cell.Label}: the model identity has neither a preset nor a path");
            var tokenizer = Vocabulary(cell.Dataset.ContentHash, data);
            CausalLm model = LlamaConfig.IsPreset(preset)
                ? new LlamaModel(LlamaConfig.Preset(preset, tokenizer.VocabSize), cell.Model.InitSeed)
                : new Gpt2Model(Gpt2Config.Preset(preset, tokenizer.VocabSize), cell.Model.InitSeed);
            return new TrialBase(tokenizer, model, new PresetBaseProvenance("preset", preset, cell.Model.InitSeed, "word-level (training pool)"));
        }

        LoadedBase loadedBase = Bases.Get(cell.Model, ct);
        string kind = PretrainRecipe.TryFromIdentity(cell.Model, out var recipe) ? "pretrained" : "folder";
        return new TrialBase(loadedBase.Tokenizer, loadedBase.CreateModel(shareWeights), new FolderBaseProvenance(
            kind, loadedBase.Directory, cell.Model.Preset, recipe, loadedBase.Pretraining?.ValidationLoss,
            loadedBase.Tokenizer.GetType().Name, shareWeights));
    }

    /// <summary>
    /// The length every training batch of a packable cell is padded to: the longest encoded example of the dataset's whole
    /// training pool (every split's pool is part of it). It depends only on what the cell's pack group shares (dataset, base),
    /// so a cell's rows have the same shape alone and in any pack, and its numbers do not depend on its partners.
    /// </summary>
    public int PadLength(CellDefinition cell, LoadedDataset data, TrialBase trialBase)
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

    public static TrainingOptions OptionsFor(CellDefinition cell) => new(
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
    public static double? BaseDropoutOf(CellDefinition cell) =>
        cell.Training.BaseDropout is { } d ? TrainingSpec.BaseDropoutRate(TrainingSpec.CanonicalBaseDropout(d)
            ?? throw new NotSupportedException($"cell {cell.Label}: base_dropout '{d}' is neither 'eval' nor a rate in [0, 1)")) : null;

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
