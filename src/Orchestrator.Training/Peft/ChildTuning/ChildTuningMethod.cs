using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.ChildTuning;

/// <summary>
/// Child-Tuning (Xu et al. 2021): the whole model is trainable, but each update only reaches a "child network" chosen by a
/// gradient mask. The mask is applied by <see cref="TransformGradients"/> after gradient clipping and before AdamW, as the
/// reference optimizer (ChildTuningAdamW) applies it inside its step after the trainer's clipping.
/// <list type="bullet">
/// <item><c>child-tuning-f</c> (task-free): at every step each gradient entry is kept with probability <c>p</c> (a fresh
/// Bernoulli(p) mask from a generator seeded with the trial seed) and the kept ones are scaled by 1/p.</item>
/// <item><c>child-tuning-d</c> (task-driven): once before training, the Fisher information of every entry is estimated as the
/// sum over the training set (in order, batches of the training batch size, model in training mode) of its squared
/// gradient; the entries whose Fisher information is at least the ⌈p·N⌉-th largest over all N entries of the model form the
/// child network (ties at the threshold are kept, as the reference's <c>&gt;= percentile</c>), and only their gradients pass
/// at every step.</item>
/// </list>
/// <para>
/// Weight decay (our choice): the method applies AdamW's decoupled decay itself (<see cref="HandlesWeightDecay"/>) and only to
/// the entries the step's mask keeps, so with D a parameter outside the child network never changes (its Adam moments stay 0
/// and it is not decayed) and with F a dropped entry is not decayed at that step. The reference decays every entry. A dropped
/// entry of F still moves by its Adam momentum from earlier steps, as in the reference (the mask zeroes the gradient, not the
/// update). With weight decay 0 (the default here) the two agree exactly.
/// </para>
/// <para>
/// Differences from the reference code, our choice: the mask covers every parameter of GPT-2 (the reference masks only BERT's
/// encoder layers, leaving embeddings and the new classifier unmasked) and the Fisher pass does not clip each parameter's
/// gradient before squaring it. Parameters: the whole model trains and is stored (as <c>finetune</c>).
/// </para>
/// </summary>
public sealed class ChildTuningMethod : BaseSubsetMethod
{
    public const string TaskFreeName = "child-tuning-f";
    public const string TaskDrivenName = "child-tuning-d";

    private Generator? _generator;
    private Tensor[]? _masks;

    private ChildTuningMethod(PeftOptionReader options, bool taskDriven) : base(options)
    {
        TaskDriven = taskDriven;
        P = options.Double("p", 0.3,
            taskDriven
                ? "fraction of the model's entries (highest Fisher information) that form the child network"
                : "probability that a gradient entry is kept at a step (kept entries are scaled by 1/p)",
            min: 0, max: 1, minExclusive: true);
    }

    /// <summary>True for Child-Tuning-D (Fisher mask), false for Child-Tuning-F (random masks).</summary>
    public bool TaskDriven { get; }

    /// <summary>p_F (keep probability) or p_D (child fraction).</summary>
    public double P { get; }

    public static ChildTuningMethod CreateTaskFree(PeftOptionReader options) => new(options, taskDriven: false);

    public static ChildTuningMethod CreateTaskDriven(PeftOptionReader options) => new(options, taskDriven: true);

    public override bool HandlesWeightDecay => true;

    /// <summary>Child-Tuning-D's masks of the last training run (one boolean tensor per trainable parameter); null before.</summary>
    public IReadOnlyList<Tensor>? ChildMasks => _masks;

    protected override bool Selects(string name, ModelShape config) => true;

    public override void OnBeforeTraining(PeftTrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (TaskDriven)
        {
            EstimateChild(context);
        }
        else
        {
            _generator?.Dispose();
            _generator = new Generator(unchecked((ulong)context.Options.Seed * 0x9E3779B97F4A7C15UL + 0xC41D), context.Model.Device);
        }
    }

    public override void TransformGradients(GradientStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        for (int i = 0; i < step.Parameters.Count; i++)
        {
            Parameter p = step.Parameters[i];
            using var scope = NewDisposeScope();
            Tensor? grad = p.grad;
            if (grad is null) continue;
            Tensor keep;
            if (TaskDriven)
            {
                keep = (_masks ?? throw new InvalidOperationException($"{TaskDrivenName}: no child network (OnBeforeTraining was not called)."))[i];
                grad.mul_(keep);
            }
            else
            {
                Generator generator = _generator ?? throw new InvalidOperationException($"{TaskFreeName}: OnBeforeTraining was not called.");
                Tensor draw = empty_like(grad).bernoulli_(P, generator);
                grad.mul_(draw);
                if (P < 1) grad.div_(P);
                keep = draw.to_type(ScalarType.Bool);
            }

            double rate = step.LearningRate * step.WeightDecayOf(p);
            if (rate > 0)
            {
                // AdamW's p ← p·(1 − lr·wd), on the kept entries only.
                Tensor decayed = p * (1 - rate);
                p.copy_(where(keep, decayed, p));
            }
        }
    }

    private void EstimateChild(PeftTrainingContext context)
    {
        DisposeMasks();
        IReadOnlyList<Parameter> parameters = context.Trainable;
        var fisher = new Tensor[parameters.Count];
        try
        {
            using (no_grad())
            {
                for (int i = 0; i < fisher.Length; i++) fisher[i] = zeros_like(parameters[i]).DetachFromDisposeScope();
            }

            foreach (int[] batch in context.Batches(context.Options.BatchSize))
            {
                context.CancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                ZeroGradients(parameters);
                using var loss = context.Loss(batch);
                loss.backward();
                using var noGrad = no_grad();
                for (int i = 0; i < fisher.Length; i++)
                {
                    if (parameters[i].grad is { } g) fisher[i].addcmul_(g, g, 1);
                }
            }

            ZeroGradients(parameters);
            using (no_grad())
            using (var scope = NewDisposeScope())
            {
                Tensor all = cat(fisher.Select(f => f.flatten()).ToArray());
                long n = all.numel();
                long k = Math.Clamp((long)Math.Ceiling(P * n), 1, n);
                double threshold = all.kthvalue(n - k + 1, 0).values.item<float>();
                _masks = fisher.Select(f => f.ge(threshold).DetachFromDisposeScope()).ToArray();
            }
        }
        finally
        {
            foreach (Tensor? f in fisher) f?.Dispose();
        }
    }

    private static void ZeroGradients(IReadOnlyList<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        foreach (Parameter p in parameters)
        {
            p.grad?.zero_();
        }
    }

    private void DisposeMasks()
    {
        if (_masks is null) return;
        foreach (Tensor m in _masks) m.Dispose();
        _masks = null;
    }

    protected override void OnDispose()
    {
        DisposeMasks();
        _generator?.Dispose();
        _generator = null;
    }
}
