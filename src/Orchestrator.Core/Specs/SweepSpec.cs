namespace Orchestrator.Core.Specs;

/// <summary>A parsed and validated sweep specification (a file under <c>sweeps/</c>).</summary>
public sealed record SweepSpec(
    string Name,
    string? Description,
    DatasetSpec Dataset,
    ModelSpec Model,
    IReadOnlyList<MethodSpec> Methods,
    GridSpec Grid,
    TrainingSpec Training,
    DecodingSpec Decoding,
    IReadOnlyList<string> Metrics,
    ExecutionSpec Execution)
{
    /// <summary>The name of the spec's own (last) stage: its top-level dataset, methods and grid.</summary>
    public const string MainStage = "main";

    /// <summary>The stage of the selection cells (<c>selection:</c>): their results group as <c>selection/METHOD</c>.</summary>
    public const string SelectionStage = "selection";

    /// <summary>
    /// Earlier stages (empty for a single-stage sweep), as declared (the stage graph is acyclic; see <c>CellExpander</c>). Each
    /// has its own dataset, methods and grid, and shares the spec's model, decoding, metrics and execution.
    /// </summary>
    public IReadOnlyList<StageSpec> Stages { get; init; } = [];

    /// <summary>The top-level <c>selection:</c> block as written (null without one); each method's effective block is <see cref="MethodSpec.Selection"/>.</summary>
    public SelectionSpec? Selection { get; init; }
}

/// <summary>
/// An earlier stage of a staged sweep: cells whose trained methods later cells need (e.g. one adapter per source task
/// before AdapterFusion). <paramref name="Training"/> is the stage's training settings (the spec's, with the stage's
/// <c>training:</c> overrides).
/// </summary>
public sealed record StageSpec(string Name, DatasetSpec Dataset, IReadOnlyList<MethodSpec> Methods, GridSpec Grid, TrainingSpec Training);

/// <summary>
/// Which cells of an earlier stage a method's cells need (<c>needs:</c>): all cells of <paramref name="Stage"/>, narrowed by
/// method, size, subsample and seed when given. <paramref name="SameSeed"/> (<c>seed: same</c>) picks the cells with the
/// dependant's own seed.
/// </summary>
public sealed record CellSelector(string Stage, string? Method = null, int? Size = null, int? Subsample = null, int? Seed = null, bool SameSeed = false)
{
    public override string ToString() =>
        $"stage '{Stage}'" + (Method is null ? "" : $", method {Method}") + (Size is null ? "" : $", size {Size}") +
        (Subsample is null ? "" : $", subsample {Subsample}") + (SameSeed ? ", the same seed" : Seed is null ? "" : $", seed {Seed}");
}

/// <summary>Which data to train and evaluate on.</summary>
/// <param name="Kind">Dataset reader: <c>synthetic-e2e</c> or <c>e2e</c> (more arrive with the data issue).</param>
/// <param name="Path">File or folder for file-backed datasets; relative paths resolve against the spec's folder.</param>
/// <param name="Splits">Evaluation splits; <c>default</c> for datasets without named splits.</param>
/// <param name="EvalLimit">At most this many evaluation inputs (each with all its references); null = all.</param>
/// <param name="Options">Reader options (for example the generator's size and seed), as canonical strings.</param>
public sealed record DatasetSpec(
    string Kind,
    string? Path,
    IReadOnlyList<string> Splits,
    int? EvalLimit,
    IReadOnlyDictionary<string, string> Options)
{
    /// <summary>
    /// <c>share_training: true</c>: the splits train on the same pool, so the cells of one method, size, subsample and seed
    /// share one trained model: the first split's cell trains and stores it, the other splits' cells load it and only decode
    /// and score their own evaluation sets (WebNLG seen/unseen/all: one training instead of three).
    /// </summary>
    public bool ShareTraining { get; init; }
}

/// <summary>
/// The base model: a built-in shape preset (randomly initialised from <paramref name="InitSeed"/>, or first pretrained as
/// <paramref name="Pretrain"/> says), or a local checkpoint folder in Hugging Face GPT-2 layout (<paramref name="Path"/>).
/// </summary>
public sealed record ModelSpec(string? Preset, string? Path, int InitSeed, PretrainSpec? Pretrain = null);

/// <summary>A PEFT method and its options (canonical strings; the method plugin interprets them).</summary>
/// <param name="Training">
/// This method's own training settings (the spec's <c>training</c> with the method's <c>training:</c> overrides applied),
/// or null when the method uses the spec's settings unchanged. Methods differ in the learning rate they need.
/// </param>
public sealed record MethodSpec(string Name, IReadOnlyDictionary<string, string> Options, TrainingSpec? Training = null)
{
    /// <summary>
    /// The base dropout this method's cells train with when no <c>training.base_dropout</c> is given (canonical; from the
    /// method plugin through <see cref="SpecVocabulary.DefaultBaseDropout"/>).
    /// </summary>
    public string DefaultBaseDropout { get; init; } = TrainingSpec.BaseDropoutGpt2;

    /// <summary>
    /// The selection this method's settings come from: its own <c>selection:</c> (control keys inherited from the top-level
    /// block), else the top-level block; null when its settings are given (<c>selection: none</c>, or no block at all).
    /// </summary>
    public SelectionSpec? Selection { get; init; }

    /// <summary>Cells of earlier stages whose trained methods this method's cells receive, in this order (<c>needs:</c>).</summary>
    public IReadOnlyList<CellSelector> Needs { get; init; } = [];

    /// <summary>The training settings this method's cells use.</summary>
    public TrainingSpec TrainingOr(TrainingSpec sweepDefault) => Training ?? sweepDefault;
}

/// <summary>The low-data grid: sizes × subsamples × seeds.</summary>
public sealed record GridSpec(
    IReadOnlyList<int> Sizes,
    int Subsamples,
    IReadOnlyList<int> Seeds,
    int ManifestSeed,
    bool Nested);

/// <summary>Training hyper-parameters; <see cref="MaxSteps"/> may differ per size.</summary>
public sealed record TrainingSpec(
    double LearningRate,
    int BatchSize,
    IReadOnlyDictionary<int, int> MaxStepsBySize,
    int WarmupSteps,
    int EvalEvery,
    double WeightDecay)
{
    /// <summary><c>base_dropout: eval</c>: no dropout in the base while training (as in eval mode).</summary>
    public const string BaseDropoutEval = "eval";

    /// <summary>The default base dropout of a method that does not declare one (GPT-2's own rate).</summary>
    public const string BaseDropoutGpt2 = "0.1";

    /// <summary>Token losses averaged over the target tokens of the batch (the default).</summary>
    public const string LossTokenMean = "token_mean";

    /// <summary>Token losses summed per sequence, then averaged over the batch (Li &amp; Liang's objective_mode=1).</summary>
    public const string LossSequenceSum = "sequence_sum";

    /// <summary>The losses <c>training.loss</c> may name.</summary>
    public static IReadOnlyList<string> Losses { get; } = [LossTokenMean, LossSequenceSum];

    /// <summary>
    /// Dropout in the base while training: <c>eval</c>, a rate in [0, 1) as a canonical string, or null for the method's
    /// default (<see cref="MethodSpec.DefaultBaseDropout"/>).
    /// </summary>
    public string? BaseDropout { get; init; }

    /// <summary>The training loss: <see cref="LossTokenMean"/> or <see cref="LossSequenceSum"/>.</summary>
    public string Loss { get; init; } = LossTokenMean;

    /// <summary>Max update steps for one training-set size.</summary>
    public int MaxStepsFor(int size) => MaxStepsBySize[size];

    /// <summary>The base dropout a cell of <paramref name="method"/> trains with: the spec's, else the method's default.</summary>
    public string BaseDropoutFor(MethodSpec method) => BaseDropout ?? method.DefaultBaseDropout;

    /// <summary>
    /// The canonical form of a base dropout: <c>eval</c> for <c>eval</c> and for a rate of 0 (the same work), else the rate
    /// in invariant round-trip form. Null when <paramref name="text"/> is neither <c>eval</c> nor a rate in [0, 1).
    /// </summary>
    public static string? CanonicalBaseDropout(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        if (string.Equals(trimmed, BaseDropoutEval, StringComparison.OrdinalIgnoreCase))
        {
            return BaseDropoutEval;
        }

        if (!double.TryParse(trimmed, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var rate)
            || !(rate >= 0 && rate < 1))
        {
            return null;
        }

        return rate == 0 ? BaseDropoutEval : rate.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The dropout rate of a canonical base dropout (<c>eval</c> = 0).</summary>
    public static double BaseDropoutRate(string canonical) =>
        canonical == BaseDropoutEval ? 0 : double.Parse(canonical, System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>How outputs are decoded for scoring.</summary>
/// <param name="LengthPenalty">Exponent α of the length in a finished beam hypothesis' score Σ log p / length^α.</param>
/// <param name="LengthNormalization">
/// What that length counts: <see cref="NormalizeNewTokens"/> (generated tokens with the end token; current transformers) or
/// <see cref="NormalizeFullSequence"/> (prompt + generated tokens without the end token, as transformers 3.x scored them in
/// Li &amp; Liang's runs).
/// </param>
/// <param name="MinLength">The end token is banned while prompt + generated tokens are fewer than this (counts the prompt, as transformers' min_length); null = none.</param>
public sealed record DecodingSpec(string Strategy, int BeamSize, int MaxNewTokens, int MinNewTokens,
    double LengthPenalty = 1.0, string LengthNormalization = DecodingSpec.NormalizeNewTokens, int? MinLength = null)
{
    public const string NormalizeNewTokens = "new_tokens";
    public const string NormalizeFullSequence = "full_sequence";

    /// <summary>The values <c>decoding.length_normalization</c> may take.</summary>
    public static IReadOnlyList<string> Normalizations { get; } = [NormalizeNewTokens, NormalizeFullSequence];
}

/// <summary>Run-time policy: not part of a cell's identity.</summary>
/// <param name="Device">Device kind a worker must have (<c>cpu</c>, <c>cuda</c>), or null for any worker.</param>
/// <param name="Artifacts">
/// Which trained methods are kept in the artifact store: <c>needed</c> (default: those of cells that a later stage needs),
/// <c>all</c> (every cell's) or <c>none</c>.
/// </param>
public sealed record ExecutionSpec(int MaxAttempts, int LeaseSeconds, string? Device = null, string Artifacts = ExecutionSpec.ArtifactsNeeded)
{
    public const string ArtifactsNeeded = "needed";
    public const string ArtifactsAll = "all";
    public const string ArtifactsNone = "none";

    /// <summary>
    /// Whether a cell's trained method goes to the artifact store under the retention policy <paramref name="artifacts"/>:
    /// always with <c>all</c>, never with <c>none</c>, and with <c>needed</c> (or an unknown value) when
    /// <paramref name="needed"/>, i.e. a cell of the sweep depends on it. Used at submit and when a queue is rebuilt.
    /// </summary>
    public static bool KeepsArtifact(string? artifacts, bool needed) => artifacts switch
    {
        ArtifactsAll => true,
        ArtifactsNone => false,
        _ => needed,
    };
}
