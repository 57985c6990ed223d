using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Decoding;

/// <summary>
/// Greedy (argmax) decoding of targets for sources, with the prompt <c>' ' + source + ' &lt;|endoftext|&gt;'</c> and a
/// key/value cache: the prompts run once, then each step feeds only the new token.
/// Generation stops at the first end token (not part of the output), after <see cref="DecodingOptions.MaxNewTokens"/> tokens,
/// or when the model's positions are used up. The end token is forbidden before <see cref="DecodingOptions.MinNewTokens"/>
/// tokens, banned ids always.
/// <para>
/// Sources are decoded in batches: prompts are left-padded, with an attention mask and position ids that start at 0 at each
/// row's first real token, so a row decodes as it would alone (up to floating-point rounding). Finished rows leave the batch
/// (their cache rows are dropped). With a PEFT method, every forward passes its hooks; a method with a decoding-time logit
/// mixture (proxy-tuning) runs each of its models with its own cache.
/// </para>
/// </summary>
public static class GreedyDecoder
{
    public const int DefaultBatchSize = 16;

    /// <summary>Decodes every source; returns the generated texts (trimmed) in the order of <paramref name="sources"/>.</summary>
    public static IReadOnlyList<string> Decode(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        int maxNewTokens = 60,
        int minNewTokens = 1,
        int batchSize = DefaultBatchSize,
        CancellationToken cancellationToken = default) =>
        Decode(model, tokenizer, sources, new DecodingOptions { MaxNewTokens = maxNewTokens, MinNewTokens = minNewTokens, BatchSize = batchSize },
            null, cancellationToken);

    /// <summary>Decodes every source with <paramref name="method"/> (null: the plain model); texts trimmed, in source order.</summary>
    public static IReadOnlyList<string> Decode(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        DecodingOptions options,
        IPeftMethod? method = null,
        CancellationToken cancellationToken = default)
    {
        var ids = DecodeIds(model, tokenizer, sources, options, method, cancellationToken);
        return ids.Select(generated => tokenizer.Decode(generated).Trim()).ToArray();
    }

    /// <summary>Like <see cref="Decode(CausalLm, ITextTokenizer, IReadOnlyList{string}, int, int, int, CancellationToken)"/>, but returns the generated token ids (without the end token).</summary>
    public static IReadOnlyList<IReadOnlyList<int>> DecodeIds(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        int maxNewTokens = 60,
        int minNewTokens = 1,
        int batchSize = DefaultBatchSize,
        CancellationToken cancellationToken = default) =>
        DecodeIds(model, tokenizer, sources, new DecodingOptions { MaxNewTokens = maxNewTokens, MinNewTokens = minNewTokens, BatchSize = batchSize },
            null, cancellationToken);

    /// <summary>Generated token ids (without the end token) for every source, in source order.</summary>
    public static IReadOnlyList<IReadOnlyList<int>> DecodeIds(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        DecodingOptions options,
        IPeftMethod? method = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int[][] prompts = DecodingPrompts.Encode(model, tokenizer, sources, method);
        var outputs = new IReadOnlyList<int>[sources.Count];
        using var evalMode = PeftForward.EvalMode(method, model);
        using var noGrad = no_grad();
        for (int start = 0; start < prompts.Length; start += options.BatchSize)
        {
            int count = Math.Min(options.BatchSize, prompts.Length - start);
            List<int>[] generated = DecodeBatch(model, method, tokenizer, prompts.AsSpan(start, count).ToArray(), options, cancellationToken);
            for (int r = 0; r < count; r++)
            {
                outputs[start + r] = generated[r];
            }
        }

        return outputs;
    }

    private static List<int>[] DecodeBatch(
        CausalLm model,
        IPeftMethod? method,
        ITextTokenizer tokenizer,
        int[][] prompts,
        DecodingOptions options,
        CancellationToken cancellationToken)
    {
        int n = prompts.Length;
        var generated = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        using var lm = new CachedLm(model, method);
        int positions = lm.Positions;
        var (ids, pads, t) = DecodingPrompts.LeftPad(prompts, tokenizer.Pad);
        int[] rows = Enumerable.Range(0, n).ToArray(); // batch row → source row
        int length = t;                                 // cache length (padding included)
        long[] next;
        using (var scope = NewDisposeScope())
        {
            Tensor logits = lm.Prefill(ids, pads, t);
            next = Pick(logits, tokenizer, options, 0, r => prompts[rows[r]].Length);
        }

        for (int step = 0; ; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var keep = new List<int>(rows.Length);
            for (int i = 0; i < rows.Length; i++)
            {
                int token = (int)next[i];
                if (token == tokenizer.EndOfText)
                {
                    continue;
                }

                int r = rows[i];
                generated[r].Add(token);
                if (prompts[r].Length + generated[r].Count < positions)
                {
                    keep.Add(i);
                }
            }

            if (keep.Count == 0 || step + 1 >= options.MaxNewTokens)
            {
                break;
            }

            if (keep.Count < rows.Length)
            {
                lm.Select(keep.Select(i => (long)i).ToArray());
                rows = keep.Select(i => rows[i]).ToArray();
                pads = keep.Select(i => pads[i]).ToArray();
                next = keep.Select(i => next[i]).ToArray();
            }

            using var scope = NewDisposeScope();
            Tensor logits = lm.Step(next, pads, length);
            length++;
            next = Pick(logits, tokenizer, options, step + 1, r => prompts[rows[r]].Length);
        }

        return generated;
    }

    private static long[] Pick(Tensor logits, ITextTokenizer tokenizer, DecodingOptions options, int generatedSoFar, Func<int, int> promptLength)
    {
        CachedLm.Constrain(logits, tokenizer, options.BannedTokenIds, banEnd: generatedSoFar < options.MinNewTokens);
        CachedLm.BanEndBelowMinLength(logits, tokenizer, options.MinLength, promptLength, generatedSoFar);
        return logits.argmax(1).cpu().data<long>().ToArray();
    }
}

/// <summary>Prompt handling shared by the decoders.</summary>
internal static class DecodingPrompts
{
    /// <summary>Token ids of every prompt; throws when one leaves no room to generate.</summary>
    public static int[][] Encode(CausalLm model, ITextTokenizer tokenizer, IReadOnlyList<string> sources, IPeftMethod? method)
    {
        int room = model.Shape.Positions - (method?.VirtualTokens() ?? 0);
        var prompts = new int[sources.Count][];
        for (int i = 0; i < sources.Count; i++)
        {
            prompts[i] = CausalLmFormat.EncodePrompt(tokenizer, sources[i]).ToArray();
            if (prompts[i].Length >= room)
            {
                throw new ArgumentException(
                    $"Source {i} needs {prompts[i].Length} tokens, which leaves no room to generate within the model's {room} positions.",
                    nameof(sources));
            }
        }

        return prompts;
    }

    /// <summary>Left-pads the prompts to the longest: ids [B·T] row-major, each row's padding, and T.</summary>
    public static (long[] Ids, int[] Pads, int T) LeftPad(int[][] prompts, int pad)
    {
        int b = prompts.Length;
        int t = prompts.Max(p => p.Length);
        var ids = new long[b * t];
        var pads = new int[b];
        for (int r = 0; r < b; r++)
        {
            pads[r] = t - prompts[r].Length;
            for (int c = 0; c < t; c++)
            {
                ids[r * t + c] = c < pads[r] ? pad : prompts[r][c - pads[r]];
            }
        }

        return (ids, pads, t);
    }
}
