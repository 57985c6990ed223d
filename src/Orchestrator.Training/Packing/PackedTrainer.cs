using System.Diagnostics;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Packing;

/// <summary>
/// Trains several trials of packable methods (<see cref="IPackableMethod"/>) on one shared frozen base at once: each step
/// concatenates the members' mini-batches (right-padded to the longest row), runs one forward and one backward pass through
/// the base with <see cref="PackedHooks"/>, and takes each member's loss on its own rows. The total loss is the sum of the
/// members' mean losses (one cross-entropy over all rows, each row weighted by 1 / its member's target-token count), so each
/// member's parameters get exactly the gradient of its own loss; clipping, AdamW, the schedule,
/// the data order, the dev evaluation and the best-weights rule are per member, as in <see cref="CausalLmTrainer"/>.
/// Members join when a row group is free (<c>next</c>) and leave when they finish, fail or are cancelled.
/// <para>
/// Equivalence: a member gets the same step losses and final weights as the same trial trained alone by
/// <see cref="CausalLmTrainer"/>, up to float rounding (the batch is padded further and the matmuls are larger); the tests
/// check 1e-4 on losses and weights. With a fixed <see cref="PackMember.PadLength"/>, a member gets bit for bit what it gets
/// in a pack of one (its rows have the same shape whoever its partners are; every operation on them is row by row), which
/// is how <see cref="TrialRunner"/> trains packable cells alone. That holds on one torch thread: on several, torch splits
/// elementwise kernels between threads at a point that follows the pack's size, and the scalar code next to a split rounds
/// transcendental functions (silu's exp) differently from the vectorised code, so workers pack only on one thread. Every member must train without base dropout
/// (<see cref="TrainingOptions.BaseDropout"/> 0, or null on a base whose rate is 0): masks would be drawn from one shared stream.
/// </para>
/// </summary>
public sealed class PackedTrainer
{
    public PackedTrainer(CausalLm model, ITextTokenizer tokenizer)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        if (tokenizer.VocabSize > model.Shape.VocabSize)
        {
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} ids but the model only {model.Shape.VocabSize} embeddings.", nameof(tokenizer));
        }
    }

    public CausalLm Model { get; }

    public ITextTokenizer Tokenizer { get; }

    /// <summary>Seconds spent so far in each phase of the pack steps (for benchmarks: where the time goes).</summary>
    public PackTimings Timings { get; } = new();

    /// <summary>Batch size of dev-loss evaluation (as <see cref="CausalLmTrainer.EvalBatchSize"/>).</summary>
    public int EvalBatchSize { get; init; } = 32;

    /// <summary>
    /// Trains until <paramref name="next"/> has nothing more and every member has finished. Before each step, while fewer than
    /// <paramref name="capacity"/> members are active, <paramref name="next"/> is asked for another (null: none now; it is asked
    /// again before the next step). <paramref name="finished"/> hears every member that leaves, with its
    /// <see cref="PackMember.Report"/> or <see cref="PackMember.Error"/>, on this thread. Returns the number of pack steps.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> stopped the whole pack (unfinished members are reported cancelled first).</exception>
    public int Run(int capacity, Func<PackMember?> next, Action<PackMember> finished, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(finished);
        var active = new List<PackMember>();
        int steps = 0;
        double checkpointDropout = Model.Dropout;
        Model.Dropout = 0; // every member trains without base dropout (TryStart refuses the others)
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                while (active.Count < capacity && next() is { } member)
                {
                    if (TryStart(member, active)) active.Add(member);
                    else Leave(member, finished);
                }

                foreach (var member in active.Where(m => m.Cancellation.IsCancellationRequested).ToArray())
                {
                    member.Error = new OperationCanceledException($"Trial {member.Id} was cancelled at step {member.Step}.", member.Cancellation);
                    active.Remove(member);
                    Leave(member, finished);
                }

                if (active.Count == 0)
                {
                    if (next() is { } late)
                    {
                        if (TryStart(late, active)) active.Add(late);
                        else Leave(late, finished);
                        continue;
                    }

                    return steps;
                }

                Step(active);
                steps++;
                foreach (var member in active.ToArray())
                {
                    if (member.Error is not null || Finished(member))
                    {
                        active.Remove(member);
                        Leave(member, finished);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            foreach (var member in active)
            {
                member.Error = new OperationCanceledException($"Trial {member.Id}: the pack was stopped at its step {member.Step}.", cancellationToken);
                Leave(member, finished);
            }

            throw;
        }
        finally
        {
            Model.train(false);
            Model.Dropout = checkpointDropout;
        }
    }

    private void Leave(PackMember member, Action<PackMember> finished)
    {
        member.ReleaseState();
        member.Clock.Stop();
        Model.train(false);
        finished(member);
    }

    private bool TryStart(PackMember member, IReadOnlyList<PackMember> active)
    {
        member.Clock.Start();
        try
        {
            var options = member.Options.Validate();
            if (member.Train.Count == 0) throw new ArgumentException("The training set is empty.");
            double rate = options.BaseDropoutOn(Model);
            if (rate > 0)
            {
                throw new ArgumentException(
                    $"Packed training needs a base without dropout (this trial's is {rate.ToString(System.Globalization.CultureInfo.InvariantCulture)}; train it alone, or with training.base_dropout: eval): its dropout masks would come from one stream shared by the trials.");
            }

            if (member.Method is not IPackableMethod packable)
            {
                throw new ArgumentException($"Method '{member.Method.Name}' cannot be packed (it changes base weights or hooks into the base other than row by row).");
            }

            if (!packable.Packable)
            {
                throw new ArgumentException($"Method '{member.Method.Name}' cannot be packed with these options (it needs the trained methods of the cells it depends on).");
            }

            options = options with { MaxSteps = options.StepsFor(member.Train.Count), Epochs = 0 };
            member.Start(options);
            member.TrainSet = TrainingParts.EncodeAll(Tokenizer, Model.Shape.Positions, member.Train, "training");
            member.DevSet = TrainingParts.EncodeAll(Tokenizer, Model.Shape.Positions, member.Dev, "dev");
            member.TargetCounts = member.TrainSet.Select(e => e.Labels.Skip(1).Count(l => l != CausalLmFormat.IgnoreIndex)).ToArray();
            member.Trainable = member.Method.Prepare(Model, new PeftContext(options.Seed, Tokenizer));
            if (!member.Method.Trains || member.Method.TrainsBaseWeights || member.Method.Hooks is null)
            {
                throw new ArgumentException($"Method '{member.Method.Name}' cannot be packed: it does not train its own hooks on a frozen base.");
            }

            using (Tensor? penalty = member.Method.RegularizationLoss())
            {
                if (penalty is not null)
                {
                    throw new ArgumentException($"Method '{member.Method.Name}' cannot be packed: it adds a regularisation term to its loss, which the pack's summed loss does not carry.");
                }
            }

            if (member.Trainable.Count == 0) throw new InvalidOperationException($"PEFT method '{member.Method.Name}' left no trainable parameters.");
            if (active.Count > 0 && active[0].Method.Hooks!.VirtualTokens != member.Method.Hooks.VirtualTokens)
            {
                throw new ArgumentException(
                    $"Trial {member.Id} puts {member.Method.Hooks.VirtualTokens} virtual tokens in front; the pack's trials put {active[0].Method.Hooks!.VirtualTokens}.");
            }

            int longest = member.TrainSet.Max(e => e.InputIds.Length);
            if (member.PadLength is { } pad && pad < longest)
            {
                throw new ArgumentException($"Trial {member.Id} has a training example of {longest} tokens, longer than its pad length {pad}.");
            }

            if (active.Count > 0 && active[0].PadLength != member.PadLength)
            {
                throw new ArgumentException(
                    $"Trial {member.Id} pads its batches to {member.PadLength?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "their longest row"}; the pack's trials to {active[0].PadLength?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "their longest row"}.");
            }

            packable.PinDropoutLength(member.PadLength ?? longest);
            member.Order = new TrainingParts.EpochOrder(member.TrainSet.Length, options.BatchSize, options.Seed);
            member.Optimizer = TrainingParts.CreateOptimizer(member.Trainable, options);
            member.BestStep = options.MaxSteps;
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            member.Error = e;
            return false;
        }
    }

    private void Step(List<PackMember> active)
    {
        var clock = Stopwatch.StartNew();
        Model.train(true);
        using var scope = torch.NewDisposeScope();
        var rows = new List<EncodedExample>();
        var groups = new List<(Gpt2Hooks Hooks, long Rows)>(active.Count);
        foreach (var m in active)
        {
            m.Step++;
            m.LearningRate = m.Options.LearningRate * m.Options.ScheduleFactor(m.Step - 1);
            foreach (ParamGroup group in m.Optimizer!.ParamGroups) group.LearningRate = m.LearningRate;
            m.Optimizer.zero_grad();
            m.Batch = m.Order!.NextBatch();
            rows.AddRange(m.Batch.Select(i => m.TrainSet[i]));
            groups.Add((m.Method.Hooks!, m.Batch.Length));
            m.NotePartners(active);
        }

        using var batch = CausalLmFormat.Collate(rows, Tokenizer.Pad, Model.Device, active[0].PadLength ?? 0);
        var hooks = new PackedHooks(groups);
        Timings.Prepare += clock.Elapsed.TotalSeconds;
        clock.Restart();
        using var hidden = Model.Hidden(batch.InputIds, hooks: hooks);

        // Logits and token losses chunk by chunk (one member's rows at a time: a working set that stays in cache, and a
        // split whose backward concatenates instead of allocating a whole-batch gradient per member), summed per row.
        long t = hidden.shape[1];
        var rowLosses = new List<Tensor>(active.Count);
        using var labels = batch.Labels.narrow(1, 1, t - 1);
        Tensor[] hiddenChunks = hidden.split(groups.Select(g => g.Rows).ToArray(), 0);
        Tensor[] labelChunks = labels.split(groups.Select(g => g.Rows).ToArray(), 0);
        for (int k = 0; k < active.Count; k++)
        {
            var logits = Model.Logits(hiddenChunks[k].narrow(1, 0, t - 1));
            var tokenLoss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), labelChunks[k].reshape(-1),
                ignore_index: CausalLmFormat.IgnoreIndex, reduction: nn.Reduction.None);
            rowLosses.Add(tokenLoss.reshape(groups[k].Rows, t - 1).sum(1));
        }

        long b = hidden.shape[0];
        using var rowLoss = cat(rowLosses, 0);
        float[] rowValues = rowLoss.detach().cpu().data<float>().ToArray();
        Timings.Forward += clock.Elapsed.TotalSeconds;
        clock.Restart();
        var weights = new float[b];
        int row = 0;
        bool any = false;
        foreach (var m in active)
        {
            // The member's own loss: per target token, or per sequence (TrainingLoss.SequenceSum), as CausalLmTrainer.
            long targets = m.Batch.Sum(i => (long)m.TargetCounts[i]);
            long divisor = m.Options.Loss == TrainingLoss.SequenceSum ? m.Batch.Length : targets;
            double loss = 0;
            for (int r = 0; r < m.Batch.Length; r++) loss += rowValues[row + r];
            loss = targets > 0 ? loss / divisor : double.NaN;
            if (!double.IsFinite(loss))
            {
                m.Error = new TrainingDivergedException(m.Step, loss);
            }
            else
            {
                for (int r = 0; r < m.Batch.Length; r++) weights[row + r] = (float)(1.0 / divisor);
                m.StepLosses.Add(loss);
                m.Tokens += m.Batch.Sum(i => (long)m.TrainSet[i].InputIds.Length);
                any = true;
            }

            row += m.Batch.Length;
        }

        if (!any) return;

        // Rows of a diverged member get weight 0 through `where` (NaN·0 would be NaN); rows never mix, so its NaNs stay
        // in its own gradients, which are not used.
        using var w = tensor(weights, [b], device: Model.Device);
        using var keep = w.gt(0);
        using var zero = zeros_like(rowLoss);
        using var total = where(keep, rowLoss * w, zero).sum();
        total.backward();
        Timings.Backward += clock.Elapsed.TotalSeconds;
        clock.Restart();
        foreach (var m in active.Where(m => m.Error is null))
        {
            if (m.Options.MaxGradNorm > 0)
            {
                double norm = nn.utils.clip_grad_norm_(m.Trainable, m.Options.MaxGradNorm);
                if (!double.IsFinite(norm))
                {
                    m.StepLosses.RemoveAt(m.StepLosses.Count - 1);
                    m.Error = new TrainingDivergedException(m.Step, norm, "gradient norm");
                    continue;
                }
            }

            m.Optimizer!.step();
        }

        Timings.Update += clock.Elapsed.TotalSeconds;
    }

    private bool Finished(PackMember member)
    {
        try
        {
            return AfterStep(member);
        }
        catch (OperationCanceledException e) when (member.Cancellation.IsCancellationRequested)
        {
            member.Error = e;
            return true;
        }
    }

    /// <summary>Dev evaluation and progress after a member's step; true when the member has finished.</summary>
    private bool AfterStep(PackMember m)
    {
        m.BestIsCurrent = false;
        double? devLoss = null;
        var options = m.Options;
        bool evaluate = m.DevSet.Length > 0 && (m.Step == options.MaxSteps || (options.EvalEvery > 0 && m.Step % options.EvalEvery == 0));
        if (evaluate)
        {
            Model.train(false);
            double d = TrainingParts.MeanLoss(m.Method, Model, Tokenizer.Pad, m.DevSet, EvalBatchSize, m.Cancellation);
            devLoss = d;
            m.DevLosses.Add((m.Step, d));
            if (double.IsNaN(m.BestDevLoss) || d < m.BestDevLoss)
            {
                m.BestDevLoss = d;
                m.BestStep = m.Step;
                m.Best = TrainingParts.Snapshot(m.Trainable, m.Best);
                m.BestIsCurrent = true;
            }
        }

        m.Progress?.Report(new TrainProgress(m.Step, options.MaxSteps, m.StepLosses[^1]) { LearningRate = m.LearningRate, DevLoss = devLoss });
        if (m.Step < options.MaxSteps) return false;
        if (m.Best is not null && !m.BestIsCurrent) TrainingParts.Restore(m.Trainable, m.Best);
        m.Report = new TrainReport(m.StepLosses.ToArray(), m.DevLosses.ToArray(), m.BestStep, m.BestDevLoss, options.MaxSteps, m.Clock.Elapsed.TotalSeconds)
        {
            Tokens = m.Tokens,
        };
        return true;
    }
}

/// <summary>Seconds per phase of <see cref="PackedTrainer"/> steps: batch assembly, forward + loss, backward, clipping + AdamW.</summary>
public sealed class PackTimings
{
    public double Prepare { get; internal set; }

    public double Forward { get; internal set; }

    public double Backward { get; internal set; }

    public double Update { get; internal set; }

    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"assemble {Prepare:F2} s, forward {Forward:F2} s, backward {Backward:F2} s, update {Update:F2} s");
}
