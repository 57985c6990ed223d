using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Decoding;

/// <summary>
/// Greedy (argmax) decoding of targets for sources, with the prompt <c>' ' + source + ' &lt;|endoftext|&gt;'</c>.
/// Generation stops at the first end token (not part of the output), after <c>maxNewTokens</c> tokens, or when the model's
/// positions are used up. The end token is suppressed until <c>minNewTokens</c> tokens have been generated.
/// <para>
/// Sources are decoded in batches: prompts are left-padded, with an attention mask and position ids that start at 0 at each
/// row's first real token, so a row decodes exactly as it would alone (up to floating-point rounding). Finished rows leave the
/// batch. There is no KV cache yet: every step runs the whole sequence again.
/// </para>
/// </summary>
public static class GreedyDecoder
{
    public const int DefaultBatchSize = 16;

    /// <summary>Decodes every source; returns the generated texts (trimmed) in the order of <paramref name="sources"/>.</summary>
    public static IReadOnlyList<string> Decode(
        Gpt2Model model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        int maxNewTokens = 60,
        int minNewTokens = 1,
        int batchSize = DefaultBatchSize,
        CancellationToken cancellationToken = default)
    {
        var ids = DecodeIds(model, tokenizer, sources, maxNewTokens, minNewTokens, batchSize, cancellationToken);
        return ids.Select(generated => tokenizer.Decode(generated).Trim()).ToArray();
    }

    /// <summary>Like <see cref="Decode"/>, but returns the generated token ids (without the end token).</summary>
    public static IReadOnlyList<IReadOnlyList<int>> DecodeIds(
        Gpt2Model model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        int maxNewTokens = 60,
        int minNewTokens = 1,
        int batchSize = DefaultBatchSize,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(minNewTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);

        var prompts = new int[sources.Count][];
        for (int i = 0; i < sources.Count; i++)
        {
            prompts[i] = tokenizer.Encode(CausalLmFormat.Prompt(sources[i])).ToArray();
            if (prompts[i].Length >= model.Config.Positions)
            {
                throw new ArgumentException(
                    $"Source {i} needs {prompts[i].Length} tokens, which leaves no room to generate within the model's {model.Config.Positions} positions.",
                    nameof(sources));
            }
        }

        var outputs = new IReadOnlyList<int>[sources.Count];
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            for (int start = 0; start < prompts.Length; start += batchSize)
            {
                int count = Math.Min(batchSize, prompts.Length - start);
                List<int>[] generated = DecodeBatch(
                    model, tokenizer, prompts.AsSpan(start, count).ToArray(), maxNewTokens, minNewTokens, cancellationToken);
                for (int r = 0; r < count; r++)
                {
                    outputs[start + r] = generated[r];
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        return outputs;
    }

    private static List<int>[] DecodeBatch(
        Gpt2Model model,
        ITextTokenizer tokenizer,
        int[][] prompts,
        int maxNewTokens,
        int minNewTokens,
        CancellationToken cancellationToken)
    {
        int n = prompts.Length;
        var sequences = prompts.Select(p => new List<int>(p)).ToArray();
        var generated = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var active = Enumerable.Range(0, n).ToList();
        int positions = model.Config.Positions;
        int endOfText = tokenizer.EndOfText;
        Device device = model.Device;

        for (int step = 0; step < maxNewTokens && active.Count > 0; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int b = active.Count;
            int t = active.Max(r => sequences[r].Count);
            bool padded = active.Any(r => sequences[r].Count != t);
            var ids = new long[b * t];
            var mask = new long[b * t];
            var pos = new long[b * t];
            for (int row = 0; row < b; row++)
            {
                List<int> seq = sequences[active[row]];
                int offset = t - seq.Count;
                for (int c = 0; c < t; c++)
                {
                    bool real = c >= offset;
                    ids[row * t + c] = real ? seq[c - offset] : tokenizer.Pad;
                    mask[row * t + c] = real ? 1 : 0;
                    pos[row * t + c] = real ? c - offset : 0;
                }
            }

            long[] next;
            using (var scope = NewDisposeScope())
            {
                ReadOnlySpan<long> shape = [b, t];
                var idsTensor = tensor(ids, shape, ScalarType.Int64, device);
                Tensor hidden = padded
                    ? model.Hidden(idsTensor, tensor(pos, shape, ScalarType.Int64, device), tensor(mask, shape, ScalarType.Int64, device))
                    : model.Hidden(idsTensor);
                Tensor logits = model.Logits(hidden.select(1, t - 1)); // [b, V]
                if (logits.shape[1] > tokenizer.VocabSize)
                {
                    // Embedding rows the tokenizer has no text for (e.g. a model vocabulary padded to a round size).
                    logits.narrow(1, tokenizer.VocabSize, logits.shape[1] - tokenizer.VocabSize).fill_(float.NegativeInfinity);
                }

                if (step < minNewTokens)
                {
                    logits.select(1, endOfText).fill_(float.NegativeInfinity);
                }

                next = logits.argmax(1).cpu().data<long>().ToArray();
            }

            var stillActive = new List<int>(b);
            for (int row = 0; row < b; row++)
            {
                int r = active[row];
                int token = (int)next[row];
                if (token == endOfText)
                {
                    continue;
                }

                generated[r].Add(token);
                sequences[r].Add(token);
                if (sequences[r].Count < positions)
                {
                    stillActive.Add(r);
                }
            }

            active = stillActive;
        }

        return generated;
    }
}
