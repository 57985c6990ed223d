using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;
using Orchestrator.Data.Synthetic;

namespace Orchestrator.Data;

/// <summary>A spec turned into work: its identities resolved and its cells expanded, ready to submit.</summary>
public sealed record SweepPlan(
    SweepSpec Spec,
    string SpecYaml,
    string SpecHash,
    DatasetIdentity Dataset,
    ModelIdentity Model,
    IReadOnlyList<CellDefinition> Cells)
{
    /// <summary>A sweep's id: its name plus a short hash of the spec text, so an edited spec is a new sweep.</summary>
    public string SweepId => $"{Spec.Name}-{SpecHash[..10]}";

    /// <summary>The selection cells (<c>selection:</c>), empty without one.</summary>
    public IReadOnlyList<SelectionCell> Selection { get; init; } = [];

    /// <summary>The resolved identity of each stage's dataset (the spec's own included), to expand the grid again with chosen settings.</summary>
    public Func<DatasetSpec, DatasetIdentity> DatasetOf { get; init; } = _ => Dataset;
}

/// <summary>
/// Parses, validates and plans a sweep: spec checks, then the checks that need the data (sizes that do not
/// fit the pool, an empty evaluation set), each reported with the spec field's path. Nothing is queued here.
/// </summary>
public static class SweepPlanner
{
    /// <param name="maxCells">The most cells the spec may expand to (<c>--max-cells</c>); checked before any data is read.</param>
    public static SweepPlan PlanFile(string specPath, SpecVocabulary vocabulary, long maxCells = SpecLimits.DefaultMaxCells)
    {
        var spec = SpecParser.ParseFile(specPath, vocabulary);
        var yaml = File.ReadAllText(specPath);
        return Plan(spec, yaml, Path.GetDirectoryName(Path.GetFullPath(specPath))!, specPath, maxCells);
    }

    public static SweepPlan PlanText(string yaml, SpecVocabulary vocabulary, string baseDirectory, string source = "<inline>",
        long maxCells = SpecLimits.DefaultMaxCells) =>
        Plan(SpecParser.Parse(yaml, vocabulary, source), yaml, baseDirectory, source, maxCells);

    private static SweepPlan Plan(SweepSpec spec, string yaml, string baseDirectory, string source, long maxCells)
    {
        if (CellCount.Check(spec, maxCells) is { } tooMany)
        {
            throw new SpecValidationException(source, [tooMany]);
        }

        var errors = new List<SpecError>();
        var dataset = CheckDataset(spec.Dataset, spec.Grid, "", baseDirectory, errors);
        var identities = new Dictionary<DatasetSpec, DatasetIdentity>(ReferenceEqualityComparer.Instance);
        if (dataset is not null)
        {
            identities[spec.Dataset] = dataset;
        }

        for (var i = 0; i < spec.Stages.Count; i++)
        {
            var stage = spec.Stages[i];
            if (CheckDataset(stage.Dataset, stage.Grid, $"stages[{i}].", baseDirectory, errors) is { } identity)
            {
                identities[stage.Dataset] = identity;
            }
        }

        if (errors.Count > 0 || dataset is null)
        {
            throw new SpecValidationException(source, errors);
        }

        var model = ResolveModel(spec.Model, baseDirectory, source);
        var normalized = yaml.Replace("\r\n", "\n");
        IReadOnlyList<CellDefinition> cells;
        try
        {
            cells = CellExpander.Expand(spec, d => identities[d], model);
        }
        catch (SpecValidationException ex)
        {
            throw new SpecValidationException(source, ex.Errors);
        }

        return new SweepPlan(spec, normalized, ContentHash.Of(normalized), dataset, model, cells)
        {
            Selection = CellExpander.ExpandSelection(spec, dataset, model),
            DatasetOf = d => identities[d],
        };
    }

    /// <summary>
    /// Resolves a dataset and checks it against its grid: every split's training pool must hold the largest size plus its dev
    /// set, and every split must have something to evaluate. Problems go to <paramref name="errors"/> under <paramref name="at"/>.
    /// </summary>
    private static DatasetIdentity? CheckDataset(DatasetSpec spec, GridSpec grid, string at, string baseDirectory, List<SpecError> errors)
    {
        DatasetIdentity dataset;
        LoadedDataset data;
        try
        {
            dataset = DatasetCatalog.Resolve(spec, baseDirectory);
            data = DatasetCatalog.Load(dataset);
        }
        catch (DatasetException ex)
        {
            var field = ex.Message.StartsWith("dataset.", StringComparison.Ordinal) ? ex.Message[..ex.Message.IndexOf(':')] : "dataset";
            var message = field == "dataset" ? ex.Message : ex.Message[(field.Length + 1)..].Trim();
            errors.Add(new SpecError(at + field, message));
            return null;
        }

        // A split that is the only one (or "default") keeps the short messages.
        var count = errors.Count;
        var named = spec.Splits.Count > 1 || spec.Splits[0] != "default";
        var reported = new HashSet<string>(StringComparer.Ordinal);
        List<string>? firstPool = null;
        for (var s = 0; s < spec.Splits.Count; s++)
        {
            var splitName = spec.Splits[s];
            LoadedDataset view;
            try
            {
                view = data.ForSplit(splitName);
            }
            catch (DatasetException ex)
            {
                errors.Add(new SpecError($"{at}dataset.splits[{s}]", ex.Message));
                continue;
            }

            if (spec.ShareTraining)
            {
                var ids = view.TrainingExamples.Select(e => e.Id).ToList();
                firstPool ??= ids;
                if (!ids.SequenceEqual(firstPool, StringComparer.Ordinal))
                {
                    errors.Add(new SpecError($"{at}dataset.share_training",
                        $"split '{splitName}' trains on another pool than split '{spec.Splits[0]}' ({ids.Count} vs {firstPool.Count} examples), so its cells cannot share a trained model"));
                }
            }

            var pool = view.TrainingExamples.Count;
            var of = named ? $" of split '{splitName}'" : "";
            for (var i = 0; i < grid.Sizes.Count; i++)
            {
                var size = grid.Sizes[i];
                var dev = CellExpander.DevSize(size);
                var message = $"size {size} is impossible: it needs {size} training + {dev} dev examples, but the training pool{of} has {pool}";
                if ((long)size + dev > pool && reported.Add($"{i}|{pool}"))
                {
                    errors.Add(new SpecError($"{at}grid.sizes[{i}]", message));
                }
            }

            if (view.Eval.Count == 0)
            {
                errors.Add(named
                    ? new SpecError($"{at}dataset.splits[{s}]", $"the evaluation set of split '{splitName}' is empty")
                    : new SpecError(at + "dataset", "the evaluation set is empty"));
            }
        }

        return errors.Count == count ? dataset : null;
    }

    /// <summary>
    /// The base model's identity: a preset (random initialisation: hash of name and seed), a preset to pretrain (the
    /// recipe with its corpus resolved by content hash, see <see cref="PretrainRecipe"/>; pretraining itself happens on the
    /// worker, once per recipe, cached under its data directory), or a local checkpoint folder (hash of its files; it must
    /// hold config.json, model.safetensors and a tokenizer).
    /// </summary>
    /// <exception cref="SpecValidationException">A missing folder or file, with the spec field's path.</exception>
    public static ModelIdentity ResolveModel(ModelSpec spec, string baseDirectory, string source = "<model>")
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Preset is { } preset && spec.Pretrain is { } pretrain)
        {
            (string Kind, string? Path, string Hash) corpus;
            try
            {
                corpus = PretrainCorpus.Resolve(pretrain.Corpus, baseDirectory, pretrain.Documents, pretrain.Seed);
            }
            catch (DatasetException ex)
            {
                var message = ex.Message.StartsWith("model.pretrain.corpus: ", StringComparison.Ordinal) ? ex.Message["model.pretrain.corpus: ".Length..] : ex.Message;
                throw new SpecValidationException(source, [new SpecError("model.pretrain.corpus", message)]);
            }

            var recipe = new PretrainRecipe(PretrainRecipe.CurrentFormat, preset, spec.InitSeed, corpus.Kind, corpus.Path, corpus.Hash,
                corpus.Kind == PretrainSpec.SyntheticCorpus ? pretrain.Documents : 0, pretrain.VocabSize, pretrain.Steps, pretrain.Seed,
                pretrain.BatchSize, pretrain.LearningRate, pretrain.WarmupSteps, pretrain.SequenceLength);
            return recipe.ToIdentity();
        }

        if (spec.Preset is { } plain)
        {
            return new ModelIdentity(plain, null, spec.InitSeed, ContentHash.Of($"preset:{plain}|init_seed:{spec.InitSeed}"));
        }

        var path = Path.GetFullPath(Path.Combine(baseDirectory, spec.Path!));
        if (!Directory.Exists(path))
        {
            throw new SpecValidationException(source, [new SpecError("model.path", $"checkpoint folder not found: {path}")]);
        }

        var missing = new List<string>();
        if (!File.Exists(Path.Combine(path, "config.json"))) missing.Add("config.json");
        if (LlamaFamilyType(path) is { } modelType)
        {
            // Llama, Mistral, Qwen2: weights whole or sharded, and a tokenizer.json (byte-level BPE) or tokenizer.model.
            if (!File.Exists(Path.Combine(path, "model.safetensors")) && !File.Exists(Path.Combine(path, "model.safetensors.index.json")))
                missing.Add("model.safetensors (or model.safetensors.index.json and its shards)");
            if (!File.Exists(Path.Combine(path, "tokenizer.json")) && !File.Exists(Path.Combine(path, "tokenizer.model")))
                missing.Add("tokenizer.json (or tokenizer.model)");
            if (missing.Count > 0)
            {
                throw new SpecValidationException(source, [new SpecError("model.path",
                    $"{path} is a {modelType} folder (config.json) but lacks {string.Join(", ", missing)}")]);
            }

            int? beginToken;
            try
            {
                beginToken = LlamaBeginToken.Of(path);
            }
            catch (FormatException ex)
            {
                throw new SpecValidationException(source, [new SpecError("model.path", ex.Message)]);
            }

            // The begin token is part of the identity (and so of every cell key): the files do not say whether the code adds it.
            return new ModelIdentity(null, path, spec.InitSeed, ContentHash.OfDirectory(path), beginToken);
        }

        if (!File.Exists(Path.Combine(path, "model.safetensors"))) missing.Add("model.safetensors");
        bool bpe = File.Exists(Path.Combine(path, "vocab.json")) && File.Exists(Path.Combine(path, "merges.txt"));
        if (!bpe && !File.Exists(Path.Combine(path, "tokenizer.word-level.json"))) missing.Add("vocab.json + merges.txt (or tokenizer.word-level.json)");
        if (missing.Count > 0)
        {
            throw new SpecValidationException(source, [new SpecError("model.path",
                $"{path} is not a model folder in Hugging Face GPT-2 layout: it lacks {string.Join(", ", missing)}")]);
        }

        return new ModelIdentity(null, path, spec.InitSeed, ContentHash.OfDirectory(path));
    }

    /// <summary>The config's model_type when it names a Llama-family architecture (llama, mistral, qwen2), else null.</summary>
    private static string? LlamaFamilyType(string folder)
    {
        string config = Path.Combine(folder, "config.json");
        if (!File.Exists(config)) return null;
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(config));
            return json.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                   && json.RootElement.TryGetProperty("model_type", out var type) && type.ValueKind == System.Text.Json.JsonValueKind.String
                   && type.GetString() is "llama" or "mistral" or "qwen2"
                ? type.GetString()
                : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null; // the worker reports the broken config with its reason
        }
    }
}
