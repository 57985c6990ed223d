using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft;

/// <summary>
/// What <see cref="CausalLmTrainer"/> offers a method around its training loop (<see cref="IPeftMethod.OnBeforeTraining"/>,
/// <see cref="IPeftMethod.GradientFreeStep"/>): the model, the parameters it trains, the options and the training loss of
/// any examples of the training set, computed exactly as the trainer computes it.
/// </summary>
public sealed class PeftTrainingContext
{
    private readonly Func<IReadOnlyList<int>, Tensor> _loss;

    /// <param name="model">The base model being trained.</param>
    /// <param name="trainable">What <see cref="IPeftMethod.Prepare"/> returned.</param>
    /// <param name="options">The training options (MaxSteps resolved from Epochs).</param>
    /// <param name="trainExamples">Number of training examples (indices 0 .. n−1).</param>
    /// <param name="loss">Training loss of the examples with the given indices (see <see cref="Loss"/>).</param>
    /// <param name="cancellationToken">The run's cancellation.</param>
    public PeftTrainingContext(
        CausalLm model,
        IReadOnlyList<Parameter> trainable,
        TrainingOptions options,
        int trainExamples,
        Func<IReadOnlyList<int>, Tensor> loss,
        CancellationToken cancellationToken = default)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Trainable = trainable ?? throw new ArgumentNullException(nameof(trainable));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(trainExamples);
        TrainExamples = trainExamples;
        _loss = loss ?? throw new ArgumentNullException(nameof(loss));
        CancellationToken = cancellationToken;
    }

    public CausalLm Model { get; }

    public IReadOnlyList<Parameter> Trainable { get; }

    /// <summary>The training options; <see cref="TrainingOptions.MaxSteps"/> is the number of steps of this run.</summary>
    public TrainingOptions Options { get; }

    public int TrainExamples { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>Loss evaluations (calls of <see cref="Loss"/>) so far.</summary>
    public long LossEvaluations { get; private set; }

    /// <summary>
    /// The training loss (<see cref="TrainingOptions.Loss"/>) of the training examples with indices <paramref name="examples"/>, through the method's
    /// forward (<see cref="PeftForward.Logits"/>), in the model's current mode. Differentiable unless called under no_grad.
    /// The result belongs to the caller's DisposeScope.
    /// </summary>
    public Tensor Loss(IReadOnlyList<int> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        LossEvaluations++;
        return _loss(examples);
    }

    /// <summary>Consecutive batches of at most <paramref name="batchSize"/> indices covering the training set once, in order.</summary>
    public IEnumerable<int[]> Batches(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        for (int start = 0; start < TrainExamples; start += batchSize)
        {
            yield return Enumerable.Range(start, Math.Min(batchSize, TrainExamples - start)).ToArray();
        }
    }
}

/// <summary>
/// One gradient update, handed to <see cref="IPeftMethod.TransformGradients"/> after backward and gradient clipping and before
/// the optimizer step: the method may change the gradients (<c>Parameters[i].grad</c>) in place.
/// </summary>
public sealed class GradientStep
{
    private readonly double _weightDecay;

    public GradientStep(int step, double learningRate, double weightDecay, IReadOnlyList<Parameter> parameters)
    {
        Step = step;
        LearningRate = learningRate;
        _weightDecay = weightDecay;
        Parameters = parameters ?? throw new ArgumentNullException(nameof(parameters));
    }

    /// <summary>The 1-based step.</summary>
    public int Step { get; }

    /// <summary>The learning rate of this step (schedule applied).</summary>
    public double LearningRate { get; }

    /// <summary>The parameters the optimizer updates (those of <see cref="IPeftMethod.Prepare"/>).</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>
    /// The decoupled weight-decay coefficient of <paramref name="parameter"/>: the options' weight decay for matrices, 0 for
    /// biases and LayerNorm weights (1-D). The trainer's AdamW applies <c>p ← p·(1 − lr·wd)</c> itself unless the method
    /// says <see cref="IPeftMethod.HandlesWeightDecay"/>; then the method must apply it here (before the Adam update, as
    /// AdamW does).
    /// </summary>
    public double WeightDecayOf(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return parameter.dim() >= 2 ? _weightDecay : 0;
    }
}

/// <summary>The outcome of one step of a gradient-free method (<see cref="IPeftMethod.GradientFreeStep"/>).</summary>
/// <param name="Loss">The training loss to report for the step (the method says which, e.g. the population's mean).</param>
/// <param name="Evaluations">Loss evaluations made by the step.</param>
/// <param name="Finished">True when the method's own budget is spent: the trainer makes this its last step.</param>
public readonly record struct GradientFreeResult(double Loss, int Evaluations, bool Finished = false);
