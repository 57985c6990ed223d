namespace Orchestrator.Training;

/// <summary>One (source, target) pair, e.g. an E2E meaning representation and its reference text.</summary>
public sealed record TrainingExample(string Source, string Target);

/// <summary>
/// Options of <see cref="CausalLmTrainer"/>. <paramref name="MaxSteps"/> optimizer updates of <paramref name="BatchSize"/>
/// examples; AdamW (eps 1e-8) with linear warm-up over <paramref name="WarmupSteps"/> updates, then linear decay to 0 at
/// <paramref name="MaxSteps"/> (Hugging Face's get_linear_schedule_with_warmup); dev loss every <paramref name="EvalEvery"/>
/// steps (0: only at the end) and at the end. <paramref name="WeightDecay"/> applies to matrices only (not to biases and
/// LayerNorm weights). Gradients are clipped to <paramref name="MaxGradNorm"/> (0: no clipping).
/// <para>
/// <see cref="Epochs"/> &gt; 0 replaces <paramref name="MaxSteps"/> (which may then be 0): the run makes
/// Epochs × ⌈examples / BatchSize⌉ updates (a batch never spans two epochs), see <see cref="StepsFor"/>.
/// </para>
/// </summary>
public sealed record TrainingOptions(
    int MaxSteps,
    int BatchSize,
    double LearningRate,
    int WarmupSteps,
    int EvalEvery,
    long Seed,
    double WeightDecay = 0,
    double MaxGradNorm = 1.0)
{
    /// <summary>Passes over the training set instead of <see cref="MaxSteps"/> (0: use MaxSteps).</summary>
    public int Epochs { get; init; }

    /// <summary>
    /// The base model's dropout rate while training (0 = the base as in eval mode); null keeps the checkpoint's own rate
    /// (<see cref="Models.Gpt2Config.Dropout"/>). The method's own dropout is not affected.
    /// </summary>
    public double? BaseDropout { get; init; }

    /// <summary>How the token losses of a batch make the training loss (the dev loss is always the token mean).</summary>
    public TrainingLoss Loss { get; init; } = TrainingLoss.TokenMean;

    /// <summary>The dropout rate the base trains with on <paramref name="model"/>.</summary>
    public double BaseDropoutOn(Models.CausalLm model) => BaseDropout ?? model.Shape.Dropout;

    /// <summary>Number of updates for a training set of <paramref name="examples"/> examples.</summary>
    public int StepsFor(int examples) =>
        Epochs > 0 ? checked(Epochs * ((Math.Max(1, examples) + BatchSize - 1) / BatchSize)) : MaxSteps;

    /// <summary>Throws <see cref="ArgumentException"/> naming every invalid field.</summary>
    public TrainingOptions Validate()
    {
        var problems = new List<string>();
        if (Epochs < 0) problems.Add($"Epochs must not be negative (got {Epochs})");
        if (Epochs == 0 && MaxSteps <= 0) problems.Add($"MaxSteps must be positive (got {MaxSteps}) unless Epochs is set");
        if (Epochs > 0 && MaxSteps < 0) problems.Add($"MaxSteps must not be negative (got {MaxSteps})");
        if (BatchSize <= 0) problems.Add($"BatchSize must be positive (got {BatchSize})");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) problems.Add($"LearningRate must be positive and finite (got {LearningRate})");
        if (WarmupSteps < 0) problems.Add($"WarmupSteps must not be negative (got {WarmupSteps})");
        if (EvalEvery < 0) problems.Add($"EvalEvery must not be negative (got {EvalEvery})");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) problems.Add($"WeightDecay must be >= 0 (got {WeightDecay})");
        if (!(MaxGradNorm >= 0) || double.IsInfinity(MaxGradNorm)) problems.Add($"MaxGradNorm must be >= 0 (got {MaxGradNorm})");
        if (BaseDropout is { } rate && !(rate >= 0 && rate < 1)) problems.Add($"BaseDropout must be in [0, 1) (got {rate})");
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid training options: " + string.Join("; ", problems) + ".");
        }

        return this;
    }

    /// <summary>Learning-rate multiplier for the update with 0-based index <paramref name="step"/> (warm-up, then linear decay).</summary>
    public double ScheduleFactor(int step) =>
        step < WarmupSteps
            ? (double)step / Math.Max(1, WarmupSteps)
            : Math.Max(0.0, (double)(MaxSteps - step) / Math.Max(1, MaxSteps - WarmupSteps));
}

/// <summary>How the token losses of a training batch are reduced to the loss that is minimised.</summary>
public enum TrainingLoss
{
    /// <summary>The mean over every target token of the batch (transformers' default cross-entropy).</summary>
    TokenMean,

    /// <summary>
    /// The sum of each sequence's target-token losses, averaged over the sequences of the batch (Li &amp; Liang's
    /// prefix-tuning, objective_mode=1): longer targets weigh more, and the gradient is about the mean target length
    /// times the token mean's.
    /// </summary>
    SequenceSum,
}

/// <summary>
/// Result of <see cref="CausalLmTrainer.Train"/>. <paramref name="StepLosses"/>[i] is the training loss of step i+1.
/// <paramref name="BestStep"/> is the step whose parameters the model holds afterwards (best dev loss; the last step when
/// there is no dev set, then <paramref name="BestDevLoss"/> is NaN).
/// </summary>
public sealed record TrainReport(
    IReadOnlyList<double> StepLosses,
    IReadOnlyList<(int Step, double Loss)> DevLosses,
    int BestStep,
    double BestDevLoss,
    int Steps,
    double Seconds)
{
    /// <summary>Non-padding input tokens processed by the training steps.</summary>
    public long Tokens { get; init; }

    /// <summary>Training throughput (tokens / second over the whole run, dev evaluation included).</summary>
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
}

/// <summary>Progress after a training step; <see cref="DevLoss"/> is set on the steps that evaluated the dev set.</summary>
public sealed record TrainProgress(int Step, int MaxSteps, double Loss)
{
    /// <summary>The step's learning rate (schedule applied); 0 for a gradient-free method, which has none.</summary>
    public double LearningRate { get; init; }

    public double? DevLoss { get; init; }
}

/// <summary>The training loss (or gradient norm) became NaN or infinite.</summary>
public sealed class TrainingDivergedException : Exception
{
    public TrainingDivergedException(int step, double loss, string what = "loss")
        : base($"Training diverged at step {step}: the {what} is {loss}. Lower the learning rate, add warm-up or check the data.")
    {
        Step = step;
        Loss = loss;
    }

    /// <summary>The 1-based step at which it happened.</summary>
    public int Step { get; }

    /// <summary>The non-finite value.</summary>
    public double Loss { get; }
}
