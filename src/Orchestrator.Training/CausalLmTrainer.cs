using System.Diagnostics;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.Finetune;
using Orchestrator.Training.Tokenization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// Trains a <see cref="CausalLm"/> on (source, target) pairs in the <see cref="CausalLmFormat"/> with a PEFT method
/// (default: full fine-tuning): AdamW, linear schedule with warm-up, gradient clipping, periodic dev loss, and the
/// parameters of the best dev step restored at the end.
/// <para>
/// Determinism: the data order comes from <see cref="TrainingOptions.Seed"/> (own generator), the model initialisation from
/// the model's seed; with dropout the global torch generator is seeded with the same seed at the start. Same seed, data and
/// thread count ⇒ the same losses.
/// </para>
/// <para>Every training and evaluation step runs inside its own DisposeScope, so no tensor outlives its step.</para>
/// </summary>
public sealed class CausalLmTrainer
{
    public CausalLmTrainer(CausalLm model, ITextTokenizer tokenizer, IPeftMethod? method = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Method = method ?? new FinetuneMethod();
        if (tokenizer.VocabSize > model.Shape.VocabSize)
        {
            throw new ArgumentException(
                $"The tokenizer has {tokenizer.VocabSize} ids but the model only {model.Shape.VocabSize} embeddings.", nameof(tokenizer));
        }
    }

    public CausalLm Model { get; }

    public ITextTokenizer Tokenizer { get; }

    public IPeftMethod Method { get; }

    /// <summary>Batch size of dev-loss evaluation (32, as in the Prefix-Tuning code).</summary>
    public int EvalBatchSize { get; init; } = 32;

    /// <summary>Trained methods of the cells this one depends on, passed to the method's <see cref="IPeftMethod.Prepare"/>.</summary>
    public IReadOnlyList<PeftDependency> Dependencies { get; init; } = [];

    /// <summary>
    /// Runs <see cref="TrainingOptions.MaxSteps"/> updates (or <see cref="TrainingOptions.Epochs"/> passes) over
    /// <paramref name="train"/> (reshuffled each epoch), evaluates <paramref name="dev"/> every
    /// <see cref="TrainingOptions.EvalEvery"/> steps and at the end, and leaves the model with the parameters of the best dev
    /// step (with an empty dev set: the last step). The model is left in eval mode. Every forward goes through
    /// <see cref="PeftForward.Logits"/> (the method's hooks, or its own trained model). A method that does not train
    /// (<see cref="IPeftMethod.Trains"/> false) is prepared and the report has no steps.
    /// <para>
    /// The method's extension points: <see cref="IPeftMethod.OnBeforeTraining"/> once before the first step (model in training
    /// mode); <see cref="IPeftMethod.RegularizationLoss"/> added to the loss before backward at every step (not to the reported
    /// or dev loss); <see cref="IPeftMethod.TransformGradients"/> at every step between gradient clipping and the optimizer step (under
    /// no_grad; with <see cref="IPeftMethod.HandlesWeightDecay"/> the AdamW runs without decay and the method applies it); and
    /// for a <see cref="IPeftMethod.GradientFree"/> method, <see cref="IPeftMethod.GradientFreeStep"/> replaces backward and
    /// AdamW at every step (no optimizer is created; the method may end the run early, which then counts as the last step).
    /// </para>
    /// </summary>
    /// <exception cref="TrainingDivergedException">A loss or gradient norm became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (parameters as they were).</exception>
    public TrainReport Train(
        IReadOnlyList<TrainingExample> train,
        IReadOnlyList<TrainingExample> dev,
        TrainingOptions options,
        IProgress<TrainProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(dev);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Count == 0)
        {
            throw new ArgumentException("The training set is empty.", nameof(train));
        }

        var stopwatch = Stopwatch.StartNew();
        options = options with { MaxSteps = options.StepsFor(train.Count), Epochs = 0 };
        EncodedExample[] trainSet = EncodeAll(train, "training");
        EncodedExample[] devSet = EncodeAll(dev, "dev");

        IReadOnlyList<Parameter> trainable = Method.Prepare(Model, new PeftContext(options.Seed, Tokenizer) { Dependencies = Dependencies });
        if (!Method.Trains)
        {
            SetTraining(false);
            return new TrainReport([], [], 0, double.NaN, 0, stopwatch.Elapsed.TotalSeconds);
        }

        if (trainable.Count == 0)
        {
            throw new InvalidOperationException($"PEFT method '{Method.Name}' left no trainable parameters.");
        }

        if (Method is Packing.IPackableMethod packable)
        {
            // The same dropout stream alone as in a pack (PackedTrainer).
            packable.PinDropoutLength(trainSet.Max(e => e.InputIds.Length));
        }

        var order = new TrainingParts.EpochOrder(trainSet.Length, options.BatchSize, options.Seed);
        var stepLosses = new List<double>(options.MaxSteps);
        var devLosses = new List<(int Step, double Loss)>();
        int lastStep = options.MaxSteps;
        int bestStep = options.MaxSteps;
        double bestDevLoss = double.NaN;
        bool bestIsCurrent = true;
        long tokens = 0;
        Tensor[]? best = null;
        Device device = Model.Device;
        bool gradientFree = Method.GradientFree;
        var context = new PeftTrainingContext(Model, trainable, options, trainSet.Length, indices =>
        {
            using var batch = CausalLmFormat.Collate(indices.Select(i => trainSet[i]).ToArray(), Tokenizer.Pad, device);
            if (gradientFree) tokens += batch.Tokens;
            using var logits = PeftForward.Logits(Method, Model, batch.InputIds);
            return CausalLmFormat.Loss(logits, batch.Labels, options.Loss);
        }, cancellationToken);

        // The base (and a method's own trained model: proxy-tuning's expert) train with the options' base dropout; their
        // checkpoint rates come back at the end.
        CausalLm[] models = Method.TrainedModel is { } trained && !ReferenceEquals(trained, Model) ? [Model, trained] : [Model];
        double[] checkpointRates = models.Select(m => m.Dropout).ToArray();
        foreach (var m in models) m.Dropout = options.BaseDropoutOn(m);
        // The cell's own generator, seeded as torch.manual_seed(seed) seeds the global one (the same draws): slots training at
        // once would otherwise share the global generator and take each other's masks.
        using var dropoutDraws = new Generator(unchecked((ulong)options.Seed), device);
        foreach (var m in models) m.DropoutGenerator = dropoutDraws;

        try
        {
            using var optimizer = gradientFree ? null : TrainingParts.CreateOptimizer(trainable, options, withDecay: !Method.HandlesWeightDecay);
            SetTraining(true);
            Method.OnBeforeTraining(context);
            for (int step = 1; step <= lastStep; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double lr = options.LearningRate * options.ScheduleFactor(step - 1);
                double loss;
                if (optimizer is null)
                {
                    using var scope = torch.NewDisposeScope();
                    GradientFreeResult result = Method.GradientFreeStep(context, step, order.NextBatch());
                    loss = result.Loss;
                    if (!double.IsFinite(loss))
                    {
                        throw new TrainingDivergedException(step, loss);
                    }

                    if (result.Finished)
                    {
                        lastStep = step;
                    }
                }
                else
                {
                    foreach (ParamGroup group in optimizer.ParamGroups)
                    {
                        group.LearningRate = lr;
                    }

                    using var scope = torch.NewDisposeScope();
                    int[] indices = order.NextBatch();
                    using var batch = CausalLmFormat.Collate(indices.Select(i => trainSet[i]).ToArray(), Tokenizer.Pad, device);
                    optimizer.zero_grad();
                    using var logits = PeftForward.Logits(Method, Model, batch.InputIds);
                    using var lossTensor = CausalLmFormat.Loss(logits, batch.Labels, options.Loss);
                    loss = lossTensor.item<float>();
                    if (!double.IsFinite(loss))
                    {
                        throw new TrainingDivergedException(step, loss);
                    }

                    using (Tensor? penalty = Method.RegularizationLoss())
                    {
                        if (penalty is null)
                        {
                            lossTensor.backward();
                        }
                        else
                        {
                            using var total = lossTensor + penalty;
                            total.backward();
                        }
                    }

                    if (options.MaxGradNorm > 0)
                    {
                        double norm = nn.utils.clip_grad_norm_(trainable, options.MaxGradNorm);
                        if (!double.IsFinite(norm))
                        {
                            throw new TrainingDivergedException(step, norm, "gradient norm");
                        }
                    }

                    using (torch.no_grad())
                    {
                        Method.TransformGradients(new GradientStep(step, lr, options.WeightDecay, trainable));
                    }

                    optimizer.step();
                    tokens += batch.Tokens;
                }

                stepLosses.Add(loss);
                bestIsCurrent = false;
                double? devLoss = null;
                bool evaluate = devSet.Length > 0 &&
                    (step == lastStep || (options.EvalEvery > 0 && step % options.EvalEvery == 0));
                if (evaluate)
                {
                    double d = EvaluateEncoded(devSet, cancellationToken);
                    SetTraining(true);
                    devLoss = d;
                    devLosses.Add((step, d));
                    if (double.IsNaN(bestDevLoss) || d < bestDevLoss)
                    {
                        bestDevLoss = d;
                        bestStep = step;
                        best = TrainingParts.Snapshot(trainable, best);
                        bestIsCurrent = true;
                    }
                }

                progress?.Report(new TrainProgress(step, lastStep, loss) { LearningRate = gradientFree ? 0 : lr, DevLoss = devLoss });
            }

            if (devSet.Length == 0)
            {
                bestStep = lastStep;
            }

            if (best is not null && !bestIsCurrent)
            {
                TrainingParts.Restore(trainable, best);
            }
        }
        finally
        {
            SetTraining(false);
            for (int i = 0; i < models.Length; i++)
            {
                models[i].Dropout = checkpointRates[i];
                models[i].DropoutGenerator = null;
            }
            if (best is not null)
            {
                foreach (Tensor t in best) t.Dispose();
            }
        }

        stopwatch.Stop();
        return new TrainReport(stepLosses, devLosses, bestStep, bestDevLoss, lastStep, stopwatch.Elapsed.TotalSeconds)
        {
            Tokens = tokens,
        };
    }

    /// <summary>
    /// Token-weighted mean loss over the target tokens of <paramref name="examples"/> (eval mode, no gradients). Returns NaN
    /// for an empty set. Leaves the model in eval mode.
    /// </summary>
    public double EvaluateLoss(IReadOnlyList<TrainingExample> examples, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(examples);
        return EvaluateEncoded(EncodeAll(examples, "evaluation"), cancellationToken);
    }

    private double EvaluateEncoded(EncodedExample[] examples, CancellationToken cancellationToken)
    {
        if (examples.Length == 0)
        {
            return double.NaN;
        }

        SetTraining(false);
        return TrainingParts.MeanLoss(Method, Model, Tokenizer.Pad, examples, EvalBatchSize, cancellationToken);
    }

    private void SetTraining(bool on)
    {
        Model.train(on);
        Method.TrainedModel?.train(on);
    }

    private EncodedExample[] EncodeAll(IReadOnlyList<TrainingExample> examples, string set) =>
        TrainingParts.EncodeAll(Tokenizer, Model.Shape.Positions, examples, set);
}
