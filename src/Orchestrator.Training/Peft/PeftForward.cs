using Orchestrator.Training.Models;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft;

/// <summary>
/// Forward passes through a base model with a PEFT method, for the trainer and the decoders: the method's hooks on the
/// base, its trained model (proxy-tuning's expert) for the loss, or its decoding-time logit mixture.
/// </summary>
public static class PeftForward
{
    /// <summary>
    /// Logits [B,T,V] for the training loss and dev loss: the method's <see cref="IPeftMethod.TrainedModel"/> if it has one,
    /// else <paramref name="model"/> with the method's hooks. A null method means the plain base.
    /// </summary>
    public static Tensor Logits(IPeftMethod? method, CausalLm model, Tensor inputIds, Tensor? positionIds = null, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (method?.TrainedModel is { } trained)
        {
            return trained.Forward(inputIds, positionIds, attentionMask);
        }

        return model.Forward(inputIds, positionIds, attentionMask, hooks: method?.Hooks);
    }

    /// <summary>
    /// Next-token logits [B, V] (V = the base's vocabulary) at the last position of <paramref name="inputIds"/>, for decoding
    /// without a cache: the method's <see cref="IPeftMethod.LogitMixture"/> if it has one, else the base with the method's
    /// hooks. Position ids and attention mask as for <see cref="CausalLm.Hidden"/> (the caller's tokens only).
    /// </summary>
    public static Tensor NextTokenLogits(IPeftMethod? method, CausalLm model, Tensor inputIds, Tensor? positionIds = null, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        long last = inputIds.shape[1] - 1;
        if (method?.LogitMixture is { Count: > 0 } mixture)
        {
            using var scope = NewDisposeScope();
            long vocab = model.Shape.VocabSize;
            Tensor? sum = null;
            foreach (WeightedModel member in mixture)
            {
                if (member.Model.Shape.VocabSize < vocab)
                {
                    throw new InvalidOperationException(
                        $"A model of the logit mixture has {member.Model.Shape.VocabSize} embeddings, fewer than the base's {vocab}.");
                }

                Tensor hidden = member.Model.Hidden(inputIds, positionIds, attentionMask, hooks: member.Hooks);
                Tensor logits = member.Model.Logits(hidden.select(1, last), member.Hooks).narrow(1, 0, vocab) * member.Weight;
                sum = sum is null ? logits : sum + logits;
            }

            return sum!.MoveToOuterDisposeScope();
        }

        using var h = model.Hidden(inputIds, positionIds, attentionMask, hooks: method?.Hooks);
        using var lastHidden = h.select(1, last);
        return model.Logits(lastHidden, method?.Hooks);
    }

    /// <summary>Puts every model the method decodes with (the base, or the members of its mixture) in eval mode; returns a restorer.</summary>
    public static IDisposable EvalMode(IPeftMethod? method, CausalLm model)
    {
        var models = new List<CausalLm> { model };
        if (method?.LogitMixture is { } mixture) models.AddRange(mixture.Select(m => m.Model));
        if (method?.TrainedModel is { } trained) models.Add(trained);
        var distinct = models.Distinct().ToArray();
        var flags = distinct.Select(m => m.training).ToArray();
        foreach (var m in distinct) m.eval();
        return new Restore(() =>
        {
            for (int i = 0; i < distinct.Length; i++) distinct[i].train(flags[i]);
        });
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
