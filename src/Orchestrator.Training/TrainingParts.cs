using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>The pieces of a training run shared by <see cref="CausalLmTrainer"/> and the packed trainer.</summary>
internal static class TrainingParts
{
    /// <summary>Tokenizes a set; an example that does not fit is reported with its set and index.</summary>
    internal static EncodedExample[] EncodeAll(Orchestrator.Training.Tokenization.ITextTokenizer tokenizer, int positions, IReadOnlyList<TrainingExample> examples, string set)
    {
        var encoded = new EncodedExample[examples.Count];
        for (int i = 0; i < examples.Count; i++)
        {
            try
            {
                encoded[i] = CausalLmFormat.Encode(tokenizer, examples[i].Source, examples[i].Target, positions);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{set} example {i}: {e.Message}", e);
            }
        }

        return encoded;
    }

    /// <summary>
    /// Token-weighted mean loss of <paramref name="method"/> on <paramref name="examples"/> (no gradients; the caller sets
    /// eval mode). NaN for an empty set.
    /// </summary>
    internal static double MeanLoss(Orchestrator.Training.Peft.IPeftMethod method, Orchestrator.Training.Models.CausalLm model, int pad,
        EncodedExample[] examples, int batchSize, CancellationToken cancellationToken)
    {
        if (examples.Length == 0)
        {
            return double.NaN;
        }

        double total = 0;
        long count = 0;
        using var noGrad = torch.no_grad();
        for (int start = 0; start < examples.Length; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            var slice = examples.AsSpan(start, Math.Min(batchSize, examples.Length - start)).ToArray();
            using var batch = CausalLmFormat.Collate(slice, pad, model.Device);
            using var logits = Orchestrator.Training.Peft.PeftForward.Logits(method, model, batch.InputIds);
            using var sum = CausalLmFormat.Loss(logits, batch.Labels, sum: true);
            total += sum.item<float>();
            count += batch.TargetTokens;
        }

        return total / count;
    }

    internal static optim.Optimizer CreateOptimizer(IReadOnlyList<Parameter> trainable, TrainingOptions options, bool withDecay = true)
    {
        const double eps = 1e-8;
        if (options.WeightDecay <= 0 || !withDecay)
        {
            return optim.AdamW(trainable, options.LearningRate, eps: eps, weight_decay: 0);
        }

        // Decay matrices (linear weights, embeddings); not biases and LayerNorm weights (1-D), as in the reference code.
        var decay = trainable.Where(p => p.dim() >= 2).ToArray();
        var noDecay = trainable.Where(p => p.dim() < 2).ToArray();
        var groups = new List<AdamW.ParamGroup>();
        if (decay.Length > 0) groups.Add(new AdamW.ParamGroup(decay, options.LearningRate, 0.9, 0.999, eps, options.WeightDecay, false, false));
        if (noDecay.Length > 0) groups.Add(new AdamW.ParamGroup(noDecay, options.LearningRate, 0.9, 0.999, eps, 0, false, false));
        return optim.AdamW(groups, options.LearningRate, eps: eps, weight_decay: options.WeightDecay);
    }

    internal static Tensor[] Snapshot(IReadOnlyList<Parameter> parameters, Tensor[]? into)
    {
        using var noGrad = torch.no_grad();
        if (into is null)
        {
            var copies = new Tensor[parameters.Count];
            for (int i = 0; i < parameters.Count; i++)
            {
                copies[i] = parameters[i].clone().DetachFromDisposeScope();
            }

            return copies;
        }

        for (int i = 0; i < parameters.Count; i++)
        {
            into[i].copy_(parameters[i]);
        }

        return into;
    }

    internal static void Restore(IReadOnlyList<Parameter> parameters, Tensor[] saved)
    {
        using var noGrad = torch.no_grad();
        for (int i = 0; i < parameters.Count; i++)
        {
            parameters[i].copy_(saved[i]);
        }
    }

    /// <summary>Seeded epoch shuffling (SplitMix64 + Fisher–Yates); a batch never spans two epochs.</summary>
    internal sealed class EpochOrder(int count, int batchSize, long seed)
    {
        private readonly int[] _order = Enumerable.Range(0, count).ToArray();
        private ulong _state = unchecked((ulong)seed);
        private int _position = count;

        public int[] NextBatch()
        {
            if (_position >= _order.Length)
            {
                Shuffle();
                _position = 0;
            }

            int n = Math.Min(batchSize, _order.Length - _position);
            int[] batch = _order.AsSpan(_position, n).ToArray();
            _position += n;
            return batch;
        }

        private void Shuffle()
        {
            for (int i = _order.Length - 1; i > 0; i--)
            {
                int j = (int)(Next() % (ulong)(i + 1));
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
        }

        private ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
