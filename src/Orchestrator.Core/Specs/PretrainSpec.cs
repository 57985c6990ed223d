using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;

namespace Orchestrator.Core.Specs;

/// <summary>
/// <c>model.pretrain</c>: pretrain the preset on a text corpus before the sweep uses it as its base. The corpus is
/// <c>synthetic</c> (generic restaurant-review text the project generates, <see cref="Documents"/> documents from
/// <see cref="Seed"/>) or a local text file or folder (one document per line; relative to the spec's folder). A byte-level
/// BPE vocabulary of <see cref="VocabSize"/> entries is learnt from the corpus, then <see cref="Steps"/> updates of
/// <see cref="BatchSize"/> × <see cref="SequenceLength"/> tokens (AdamW, linear schedule after <see cref="WarmupSteps"/>).
/// </summary>
public sealed record PretrainSpec(
    string Corpus,
    int Steps,
    int Seed,
    int BatchSize = PretrainSpec.DefaultBatchSize,
    double LearningRate = PretrainSpec.DefaultLearningRate,
    int WarmupSteps = PretrainSpec.DefaultWarmupSteps,
    int SequenceLength = PretrainSpec.DefaultSequenceLength,
    int VocabSize = PretrainSpec.DefaultVocabSize,
    int Documents = PretrainSpec.DefaultDocuments)
{
    public const string SyntheticCorpus = "synthetic";
    public const int DefaultSteps = 1500;
    public const int DefaultBatchSize = 16;
    public const double DefaultLearningRate = 2e-3;
    public const int DefaultWarmupSteps = 100;
    public const int DefaultSequenceLength = 128;
    public const int DefaultVocabSize = 1024;
    public const int DefaultDocuments = 20_000;

    /// <summary>Longest pretraining sequence (each batch allocates batch_size × sequence_length tokens).</summary>
    public const int MaxSequenceLength = 65_536;

    /// <summary>Most synthetic documents (generated in memory before the vocabulary is learnt).</summary>
    public const int MaxDocuments = 1_000_000;

    /// <summary>Problems with the values (the ranges the spec parser enforces), each naming its option; empty when valid.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Corpus)) problems.Add("corpus: must not be empty");
        if (Steps is < 1 or > SpecLimits.MaxSteps) problems.Add($"steps: must be between 1 and {SpecLimits.MaxSteps}, got {Steps}");
        if (Seed < 0) problems.Add($"seed: must be at least 0, got {Seed}");
        if (BatchSize is < 1 or > 4096) problems.Add($"batch_size: must be between 1 and 4096, got {BatchSize}");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) problems.Add($"learning_rate: must be greater than 0, got {LearningRate}");
        if (WarmupSteps is < 0 or > SpecLimits.MaxWarmupSteps) problems.Add($"warmup_steps: must be between 0 and {SpecLimits.MaxWarmupSteps}, got {WarmupSteps}");
        if (SequenceLength is < 8 or > MaxSequenceLength) problems.Add($"sequence_length: must be between 8 and {MaxSequenceLength}, got {SequenceLength}");
        if (VocabSize < 260) problems.Add($"vocab_size: must be at least 260 (256 bytes, the end token and some merges), got {VocabSize}");
        if (Documents is < 1 or > MaxDocuments) problems.Add($"documents: must be between 1 and {MaxDocuments}, got {Documents}");
        return problems;
    }
}

/// <summary>
/// Everything that determines a pretrained base, resolved (the corpus by content hash). A cell carries it inside its
/// <see cref="ModelIdentity"/>: <see cref="ModelIdentity.Path"/> is <c>pretrain:</c> + the recipe's canonical JSON, and
/// <see cref="ModelIdentity.ContentHash"/> is <see cref="Hash"/>, the SHA-256 of that JSON without the corpus path (so the
/// same corpus content anywhere gives the same base). A worker pretrains the recipe once and caches the result under
/// <c>DATA_DIR/bases/HASH</c>.
/// </summary>
public sealed record PretrainRecipe(
    [property: JsonPropertyName("format")] string Format,
    [property: JsonPropertyName("preset")] string Preset,
    [property: JsonPropertyName("init_seed")] int InitSeed,
    [property: JsonPropertyName("corpus")] string Corpus,
    [property: JsonPropertyName("corpus_path")] string? CorpusPath,
    [property: JsonPropertyName("corpus_hash")] string CorpusHash,
    [property: JsonPropertyName("documents")] int Documents,
    [property: JsonPropertyName("vocab_size")] int VocabSize,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("batch_size")] int BatchSize,
    [property: JsonPropertyName("learning_rate")] double LearningRate,
    [property: JsonPropertyName("warmup_steps")] int WarmupSteps,
    [property: JsonPropertyName("sequence_length")] int SequenceLength)
{
    /// <summary>
    /// Version of the pretraining semantics (corpus generator, BPE learner, training loop). Bump it when a code change
    /// alters the pretrained weights, so cached bases and cells keyed on them are not reused. 2: pretraining runs on one
    /// torch thread (format 1 ran on the process's count, so one recipe gave different bases on machines and modes with
    /// different thread counts).
    /// </summary>
    public const string CurrentFormat = "orchestrator-pretrain/2";

    /// <summary>Prefix of <see cref="ModelIdentity.Path"/> for pretrained bases.</summary>
    public const string Scheme = "pretrain:";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Canonical JSON (fixed property order, invariant numbers).</summary>
    public string ToCanonicalJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The base's identity: SHA-256 of the canonical JSON without the corpus path.</summary>
    [JsonIgnore]
    public string Hash => ContentHash.Of((this with { CorpusPath = null }).ToCanonicalJson());

    /// <summary>The model identity a cell carries.</summary>
    public ModelIdentity ToIdentity() => new(Preset, Scheme + ToCanonicalJson(), InitSeed, Hash);

    /// <summary>Reads the recipe back from a model identity (false when it is not a pretrained base).</summary>
    /// <exception cref="FormatException">The identity says pretrain but the recipe cannot be read, or its hash differs.</exception>
    public static bool TryFromIdentity(ModelIdentity identity, [NotNullWhen(true)] out PretrainRecipe? recipe)
    {
        ArgumentNullException.ThrowIfNull(identity);
        recipe = null;
        if (identity.Path is null || !identity.Path.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            recipe = JsonSerializer.Deserialize<PretrainRecipe>(identity.Path[Scheme.Length..], Json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"The model identity's pretraining recipe is not valid JSON: {e.Message}", e);
        }

        if (recipe is null || recipe.Format != CurrentFormat)
        {
            throw new FormatException(
                $"The model identity's pretraining recipe has format '{recipe?.Format}'; this version understands '{CurrentFormat}'.");
        }

        if (recipe.Hash != identity.ContentHash)
        {
            throw new FormatException($"The pretraining recipe hashes to {recipe.Hash[..12]}, but the identity says {identity.ContentHash[..12]}.");
        }

        return true;
    }
}
