using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using static TorchSharp.torch;

namespace Orchestrator.Training.Decoding;

/// <summary>
/// A causal language model seen one step at a time: token ids [B,T] and an optional KV cache in, next-token logits [B,V]
/// at the last position and the new cache out. Both families implement it, so that <see cref="TextGenerator"/> serves either.
/// </summary>
public interface IStepLanguageModel
{
    /// <summary>Logits per step (the model's vocabulary).</summary>
    int VocabSize { get; }

    /// <summary>Positions available to real tokens (the model's context less any virtual tokens of a method).</summary>
    int Positions { get; }

    /// <summary>
    /// Runs <paramref name="ids"/> [B,T] after <paramref name="past"/> (null on the first call) and returns the logits [B,V] of
    /// the last position; <paramref name="presents"/> receives the cache to pass next time. Tensors belong to the caller's
    /// DisposeScope.
    /// </summary>
    Tensor Next(Tensor ids, IReadOnlyList<LayerKeyValue>? past, List<LayerKeyValue> presents);
}

/// <summary>A Llama-family model, optionally with a trained method's hooks, as an <see cref="IStepLanguageModel"/>.</summary>
public sealed class LlamaStepModel(LlamaModel model, IPeftMethod? method = null) : IStepLanguageModel
{
    public int VocabSize => model.Config.VocabSize;

    public int Positions => model.Config.Positions - (method?.VirtualTokens() ?? 0);

    public Tensor Next(Tensor ids, IReadOnlyList<LayerKeyValue>? past, List<LayerKeyValue> presents)
    {
        using var hidden = model.Hidden(ids, past: past, hooks: method?.Hooks, presents: presents);
        using var last = hidden.select(1, hidden.shape[1] - 1);
        return model.Logits(last, method?.Hooks);
    }
}

/// <summary>A GPT-2 model, optionally with a trained method's hooks, as an <see cref="IStepLanguageModel"/>.</summary>
public sealed class Gpt2StepModel(Gpt2Model model, IPeftMethod? method) : IStepLanguageModel
{
    public int VocabSize => model.Config.VocabSize;

    public int Positions => model.Config.Positions - (method?.VirtualTokens() ?? 0);

    public Tensor Next(Tensor ids, IReadOnlyList<LayerKeyValue>? past, List<LayerKeyValue> presents)
    {
        using var hidden = model.Hidden(ids, past: past, hooks: method?.Hooks, presents: presents);
        using var last = hidden.select(1, hidden.shape[1] - 1);
        return model.Logits(last, method?.Hooks);
    }
}

/// <summary>
/// Continues one prompt of token ids, with a KV cache. Greedy decoding takes the arg-max at every step; beam search keeps
/// the <c>beams</c> best partial continuations by summed log-probability, finishes a hypothesis at an end token and stops
/// when <c>beams</c> hypotheses have finished (transformers' <c>early_stopping=True</c>) or after the token limit, ranking
/// finished hypotheses by summed log-probability over their new-token count (length penalty 1). Both stop at any of the
/// end ids (which are not part of the output) or after <c>maxNewTokens</c>, or when the positions run out.
/// </summary>
public static class TextGenerator
{
    /// <summary>The arg-max continuation of <paramref name="prompt"/> (new tokens only, without the end token).</summary>
    public static IReadOnlyList<int> Greedy(IStepLanguageModel model, IReadOnlyList<int> prompt, int maxNewTokens, IReadOnlyCollection<int> endIds)
    {
        Check(model, prompt, maxNewTokens);
        var output = new List<int>();
        using var noGrad = no_grad();
        List<LayerKeyValue>? cache = null;
        try
        {
            long[] next = prompt.Select(i => (long)i).ToArray();
            while (output.Count < maxNewTokens)
            {
                using var scope = NewDisposeScope();
                var presents = new List<LayerKeyValue>();
                Tensor logits = model.Next(tensor(next, [1, next.Length], ScalarType.Int64), cache, presents);
                Replace(ref cache, presents);
                int token = (int)logits.argmax(1).item<long>();
                if (endIds.Contains(token)) break;
                output.Add(token);
                next = [token];
                if (prompt.Count + output.Count >= model.Positions) break;
            }
        }
        finally
        {
            Release(cache);
        }

        return output;
    }

    /// <summary>The best beam-search continuation of <paramref name="prompt"/> (new tokens only, without the end token).</summary>
    public static IReadOnlyList<int> Beam(IStepLanguageModel model, IReadOnlyList<int> prompt, int maxNewTokens, int beams, IReadOnlyCollection<int> endIds)
    {
        Check(model, prompt, maxNewTokens);
        if (beams < 1) throw new ArgumentOutOfRangeException(nameof(beams), beams, "beams must be at least 1.");
        var finished = new List<(List<int> Tokens, double Score)>();
        var running = new List<(List<int> Tokens, double LogProb)> { ([], 0.0) };
        using var noGrad = no_grad();
        List<LayerKeyValue>? cache = null;
        try
        {
            Tensor? logProbs;
            using (var scope = NewDisposeScope())
            {
                var presents = new List<LayerKeyValue>();
                Tensor logits = model.Next(tensor(prompt.Select(i => (long)i).ToArray(), [1, prompt.Count], ScalarType.Int64), null, presents);
                Replace(ref cache, presents);
                logProbs = logits.log_softmax(1).to_type(ScalarType.Float64).MoveToOuterDisposeScope();
            }

            for (int step = 0; ; step++)
            {
                double[] scores = logProbs.cpu().data<double>().ToArray();
                logProbs.Dispose();
                int vocab = model.VocabSize;
                var candidates = new List<(int Row, int Token, double LogProb)>();
                for (int r = 0; r < running.Count; r++)
                {
                    foreach (int v in TopIndices(scores.AsSpan(r * vocab, vocab), 2 * beams))
                    {
                        candidates.Add((r, v, running[r].LogProb + scores[r * vocab + v]));
                    }
                }

                var next = new List<(List<int> Tokens, double LogProb)>();
                var rows = new List<long>();
                foreach (var c in candidates.OrderByDescending(c => c.LogProb).ThenBy(c => c.Row).ThenBy(c => c.Token))
                {
                    var tokens = running[c.Row].Tokens;
                    if (endIds.Contains(c.Token))
                    {
                        if (finished.Count < beams) finished.Add((tokens, c.LogProb / Math.Max(1, tokens.Count + 1)));
                        continue;
                    }

                    if (next.Count < beams)
                    {
                        next.Add(([.. tokens, c.Token], c.LogProb));
                        rows.Add(c.Row);
                    }

                    if (next.Count == beams && finished.Count >= beams) break;
                }

                running = next;
                int length = running.Count == 0 ? 0 : running[0].Tokens.Count;
                if (finished.Count >= beams || running.Count == 0 || length >= maxNewTokens || prompt.Count + length >= model.Positions)
                {
                    break;
                }

                using var stepScope = NewDisposeScope();
                Tensor index = tensor(rows.ToArray(), ScalarType.Int64);
                var selected = cache!.Select(kv => new LayerKeyValue(kv.Key.index_select(0, index), kv.Value.index_select(0, index))).ToList();
                var presents2 = new List<LayerKeyValue>();
                Tensor stepLogits = model.Next(tensor(running.Select(b => (long)b.Tokens[^1]).ToArray(), [running.Count, 1], ScalarType.Int64), selected, presents2);
                Replace(ref cache, presents2);
                logProbs = stepLogits.log_softmax(1).to_type(ScalarType.Float64).MoveToOuterDisposeScope();
            }
        }
        finally
        {
            Release(cache);
        }

        if (finished.Count < beams)
        {
            foreach (var (tokens, logProb) in running)
            {
                finished.Add((tokens, logProb / Math.Max(1, tokens.Count)));
            }
        }

        return finished.OrderByDescending(f => f.Score).First().Tokens;
    }

    private static void Check(IStepLanguageModel model, IReadOnlyList<int> prompt, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("The input has no tokens.", nameof(prompt));
        if (maxNewTokens < 1) throw new ArgumentOutOfRangeException(nameof(maxNewTokens), maxNewTokens, "max new tokens must be at least 1.");
        if (prompt.Count >= model.Positions)
        {
            throw new ArgumentException($"The input has {prompt.Count} tokens, which leaves no room within the model's {model.Positions} positions.", nameof(prompt));
        }

        foreach (int id in prompt)
        {
            if (id < 0 || id >= model.VocabSize) throw new ArgumentException($"Token id {id} is outside the model's vocabulary of {model.VocabSize}.", nameof(prompt));
        }
    }

    private static IEnumerable<int> TopIndices(ReadOnlySpan<double> scores, int k)
    {
        var order = new int[scores.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        double[] copy = scores.ToArray();
        Array.Sort(order, (a, b) => copy[b] != copy[a] ? copy[b].CompareTo(copy[a]) : a.CompareTo(b));
        return order.Take(k).Where(i => !double.IsNegativeInfinity(copy[i]));
    }

    private static void Replace(ref List<LayerKeyValue>? cache, List<LayerKeyValue> presents)
    {
        foreach (var kv in presents)
        {
            kv.Key.DetachFromDisposeScope();
            kv.Value.DetachFromDisposeScope();
        }

        Release(cache);
        cache = presents;
    }

    private static void Release(List<LayerKeyValue>? cache)
    {
        if (cache is null) return;
        foreach (var kv in cache)
        {
            kv.Key.Dispose();
            kv.Value.Dispose();
        }
    }
}
