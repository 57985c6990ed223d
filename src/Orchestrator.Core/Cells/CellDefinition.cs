using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Cells;

/// <summary>
/// Everything that determines one cell's result (one trained model). Its canonical JSON is hashed into the
/// cell key, so the same work always has the same key, and resubmitting a spec never duplicates work.
/// Run-time policy (attempts, leases) and the sweep's name are deliberately not part of it. A cell of a staged sweep also
/// carries its stage (null for the spec's own stage) and the keys of the cells it needs, so its key includes theirs; both are
/// left out of the JSON when null, which keeps the keys of unstaged cells as they were.
/// </summary>
public sealed record CellDefinition(
    [property: JsonPropertyName("code_version")] string CodeVersion,
    [property: JsonPropertyName("dataset")] DatasetIdentity Dataset,
    [property: JsonPropertyName("split")] string Split,
    [property: JsonPropertyName("model")] ModelIdentity Model,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("method_options")] SortedDictionary<string, string> MethodOptions,
    [property: JsonPropertyName("size")] int Size,
    [property: JsonPropertyName("subsample")] int Subsample,
    [property: JsonPropertyName("manifest")] ManifestIdentity Manifest,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("training")] TrainingSettings Training,
    [property: JsonPropertyName("decoding")] DecodingSettings Decoding,
    [property: JsonPropertyName("stage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Stage = null,
    [property: JsonPropertyName("needs"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Needs = null,
    [property: JsonPropertyName("reuse_training"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? ReuseTraining = null)
{
    /// <summary>
    /// True for a cell that does not train: it decodes and scores with the trained model of the one cell it needs (another
    /// split's cell of the same method, size, subsample and seed; <c>dataset.share_training</c>).
    /// </summary>
    [JsonIgnore]
    public bool ReusesTraining => ReuseTraining == true;

    /// <summary>
    /// Version of the training/decoding semantics. Bump it when a code change alters results, so that
    /// old cells are not mistaken for new ones.
    /// </summary>
    public const string CurrentCodeVersion = "orchestrator-cell/1";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Canonical JSON: fixed property order, ordinal-sorted option maps, invariant numbers.</summary>
    public string ToCanonicalJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The cell key: SHA-256 of the canonical JSON, lower-case hex.</summary>
    [JsonIgnore]
    public string Key => ContentHash.Of(ToCanonicalJson());

    public static CellDefinition FromJson(string json) =>
        JsonSerializer.Deserialize<CellDefinition>(json, Json) ?? throw new FormatException("empty cell definition");

    /// <summary>
    /// Cells that can train together in one pack on a shared frozen base: same data, same base model, same method with the
    /// same options (so the same shapes). A hash; whether the method packs at all is the worker's business.
    /// </summary>
    [JsonIgnore]
    public string PackGroup => ContentHash.Of(JsonSerializer.Serialize(new { Dataset, Model, Method, MethodOptions }, Json));

    /// <summary>
    /// The pack group the queue offers this cell under: <see cref="PackGroup"/>, or null for a cell that needs other cells'
    /// trained methods (it trains alone, with its own inputs).
    /// </summary>
    [JsonIgnore]
    public string? QueuePackGroup => Dependencies.Count > 0 ? null : PackGroup;

    /// <summary>A short human-readable label, e.g. <c>finetune n=50 s1 seed0</c> (with its stage for an earlier stage's cell).</summary>
    [JsonIgnore]
    public string Label => $"{ResultsMethod} n={Size} sub{Subsample} seed{Seed}" + (Split == "default" ? "" : $" [{Split}]");

    /// <summary>
    /// The method as results group it: the method's name, prefixed with the stage for a cell of an earlier stage
    /// (<c>src-webnlg/adapter</c>), so that an earlier stage's cells never average into the spec's own points.
    /// </summary>
    [JsonIgnore]
    public string ResultsMethod => Stage is null ? Method : $"{Stage}/{Method}";

    /// <summary>The keys of the cells whose trained methods this cell needs (empty for a cell without dependencies).</summary>
    [JsonIgnore]
    public IReadOnlyList<string> Dependencies => Needs ?? [];
}

/// <param name="Kind">Reader name (e.g. <c>synthetic-e2e</c>, <c>e2e</c>).</param>
/// <param name="Path">Where the worker reads it (null for generated data).</param>
/// <param name="ContentHash">Hash of the data's content (file bytes, or the generated examples).</param>
/// <param name="Options">Reader options.</param>
/// <param name="EvalLimit">Cap on evaluation inputs, if any.</param>
public sealed record DatasetIdentity(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("path")] string? Path,
    [property: JsonPropertyName("content_hash")] string ContentHash,
    [property: JsonPropertyName("options")] SortedDictionary<string, string> Options,
    [property: JsonPropertyName("eval_limit")] int? EvalLimit);

/// <param name="Preset">Built-in shape, randomly initialised from <paramref name="InitSeed"/> (null for a checkpoint).</param>
/// <param name="Path">Local checkpoint folder (null for a preset).</param>
/// <param name="ContentHash">Hash of the checkpoint folder, or of the preset's name and seed.</param>
/// <param name="BeginToken">
/// The begin-of-sequence id a Llama-family folder's tokenizer puts first (Llama 2, Mistral, Llama 3), which training and
/// decoding prepend to every source; null when it adds none (Qwen2, GPT-2, presets), and then left out of the JSON, so
/// those cells keep their keys. The folder's content hash alone does not cover it: the files are the same whether or not
/// the code prepends the token, so cells planned before the token was added must not share a key with cells that add it.
/// </param>
public sealed record ModelIdentity(
    [property: JsonPropertyName("preset")] string? Preset,
    [property: JsonPropertyName("path")] string? Path,
    [property: JsonPropertyName("init_seed")] int InitSeed,
    [property: JsonPropertyName("content_hash")] string ContentHash,
    [property: JsonPropertyName("begin_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? BeginToken = null);

/// <summary>Inputs of the subsample manifest (a pure function of these and the dataset hash).</summary>
public sealed record ManifestIdentity(
    [property: JsonPropertyName("algorithm")] string Algorithm,
    [property: JsonPropertyName("pool")] string Pool,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("nested")] bool Nested,
    [property: JsonPropertyName("dev_fraction")] double DevFraction);

/// <summary>A cell's training hyper-parameters.</summary>
/// <param name="BaseDropout">
/// Dropout in the base model while training: <c>eval</c> (none, the base as in eval mode) or a rate such as <c>0.1</c>
/// (<see cref="TrainingSpec.BaseDropoutEval"/>; canonical, from <see cref="TrainingSpec.CanonicalBaseDropout"/>). Every cell
/// a spec expands names it; null only in cells stored before the setting existed, which trained with the checkpoint's own
/// rate (our presets: 0).
/// </param>
/// <param name="Loss">
/// <c>sequence_sum</c> (token losses summed per sequence, mean over the batch: Li &amp; Liang's objective_mode=1), or null
/// for the token mean (left out of the key, so cells with the mean keep the keys they had).
/// </param>
public sealed record TrainingSettings(
    [property: JsonPropertyName("learning_rate")] double LearningRate,
    [property: JsonPropertyName("batch_size")] int BatchSize,
    [property: JsonPropertyName("max_steps")] int MaxSteps,
    [property: JsonPropertyName("warmup_steps")] int WarmupSteps,
    [property: JsonPropertyName("eval_every")] int EvalEvery,
    [property: JsonPropertyName("weight_decay")] double WeightDecay,
    [property: JsonPropertyName("base_dropout"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? BaseDropout = null,
    [property: JsonPropertyName("loss"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Loss = null)
{
    /// <summary>The training loss by name: <c>token_mean</c> unless <see cref="Loss"/> says otherwise.</summary>
    [JsonIgnore]
    public string LossOrDefault => Loss ?? TrainingSpec.LossTokenMean;
}

/// <summary>A cell's decoding settings.</summary>
/// <param name="LengthPenalty">
/// Exponent α of the length in a finished beam hypothesis' score (Σ log p / length^α); null = 1 (left out of the key).
/// </param>
/// <param name="LengthNormalization">
/// What the length of a finished hypothesis counts: null = <c>new_tokens</c> (generated tokens, the end token included;
/// current transformers), or <c>full_sequence</c> (the prompt too, as the transformers 3.x the paper ran).
/// </param>
/// <param name="MinLength">
/// The end token is banned while prompt + generated tokens are fewer than this (transformers' <c>min_length</c>, which
/// counts the prompt: with GPT-2's E2E prompts of 20+ tokens, 5 never binds); null = no such bound. Independent of
/// <see cref="LengthNormalization"/>; <see cref="MinNewTokens"/> (generated tokens only) applies as well.
/// </param>
public sealed record DecodingSettings(
    [property: JsonPropertyName("strategy")] string Strategy,
    [property: JsonPropertyName("beam_size")] int BeamSize,
    [property: JsonPropertyName("max_new_tokens")] int MaxNewTokens,
    [property: JsonPropertyName("min_new_tokens")] int MinNewTokens,
    [property: JsonPropertyName("length_penalty"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? LengthPenalty = null,
    [property: JsonPropertyName("length_normalization"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? LengthNormalization = null,
    [property: JsonPropertyName("min_length"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? MinLength = null);
