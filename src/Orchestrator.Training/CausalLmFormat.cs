using System.Runtime.CompilerServices;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>A tokenized training sequence; <see cref="Labels"/> has the same length as <see cref="InputIds"/>.</summary>
public sealed record EncodedExample(int[] InputIds, int[] Labels)
{
    /// <summary>Number of positions that count in the loss.</summary>
    public int TargetTokens => Labels.Count(l => l != CausalLmFormat.IgnoreIndex);
}

/// <summary>Input ids and labels of one batch, [B,T] int64 each, right-padded.</summary>
public sealed class CausalLmBatch : IDisposable
{
    public CausalLmBatch(Tensor inputIds, Tensor labels, long tokens, long targetTokens)
    {
        InputIds = inputIds;
        Labels = labels;
        Tokens = tokens;
        TargetTokens = targetTokens;
    }

    public Tensor InputIds { get; }

    public Tensor Labels { get; }

    /// <summary>Non-padding tokens.</summary>
    public long Tokens { get; }

    /// <summary>Positions that count in the loss.</summary>
    public long TargetTokens { get; }

    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// The causal-LM data format of the Prefix-Tuning code: the sequence is
/// <c>' ' + source + ' &lt;|endoftext|&gt; ' + target + ' &lt;|endoftext|&gt;'</c>; labels are <see cref="IgnoreIndex"/>
/// up to and including the first end token, so the loss covers the target tokens and the final end token.
/// Labels are aligned with the input ids (the label of position i is token i); the loss compares logits at i with labels
/// at i+1 (see <see cref="Loss"/>).
/// </summary>
public static class CausalLmFormat
{
    /// <summary>Label value excluded from the loss (as in PyTorch's cross_entropy ignore_index).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>The generation prompt: <c>' ' + source + ' &lt;|endoftext|&gt;'</c>.</summary>
    public static string Prompt(string source) => " " + source + " " + EndLiteral;

    /// <summary>The continuation after the prompt: <c>' ' + target + ' &lt;|endoftext|&gt;'</c>.</summary>
    public static string Continuation(string target) => " " + target + " " + EndLiteral;

    /// <summary>Per tokenizer, whether it encodes <see cref="EndLiteral"/> as its end id (asked once, not per example).</summary>
    private static readonly ConditionalWeakTable<ITextTokenizer, StrongBox<bool>> ReadsEndLiteral = new();

    /// <summary>The end token as the format writes it.</summary>
    public const string EndLiteral = "<|endoftext|>";

    /// <summary>
    /// The ids of <paramref name="text"/> in this format. Tokenizers that read <see cref="EndLiteral"/> as their end id
    /// (word-level, GPT-2 BPE) encode the text whole, as they always have; for the others (a Llama-family tokenizer, whose end
    /// token has another name, e.g. &lt;/s&gt; or &lt;|end_of_text|&gt;) the text is encoded around each literal and the
    /// tokenizer's <see cref="ITextTokenizer.EndOfText"/> id stands in its place, so the model learns to end with the
    /// checkpoint's own end id and decoding stops there.
    /// </summary>
    public static IReadOnlyList<int> EncodeText(ITextTokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(text);
        if (ReadsEndLiteral.GetValue(tokenizer, t => new StrongBox<bool>(t.Encode(EndLiteral) is [var only] && only == t.EndOfText)).Value)
        {
            return tokenizer.Encode(text);
        }

        var ids = new List<int>();
        string[] parts = text.Split(EndLiteral);
        for (int i = 0; i < parts.Length; i++)
        {
            if (i > 0) ids.Add(tokenizer.EndOfText);
            if (parts[i].Length > 0) ids.AddRange(tokenizer.Encode(parts[i]));
        }

        return ids;
    }

    /// <summary>
    /// The ids of the generation prompt of <paramref name="source"/>: <see cref="ITextTokenizer.BeginToken"/> first when the
    /// tokenizer has one (a Llama-family folder whose tokenizer adds it), then <see cref="Prompt"/> in this format.
    /// </summary>
    public static IReadOnlyList<int> EncodePrompt(ITextTokenizer tokenizer, string source)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        IReadOnlyList<int> prompt = EncodeText(tokenizer, Prompt(source));
        return tokenizer.BeginToken is { } begin ? [begin, .. prompt] : prompt;
    }

    /// <summary>
    /// Tokenizes one pair (the prompt with the tokenizer's begin token first, if it has one: <see cref="EncodePrompt"/>). The prompt and the continuation are encoded separately and concatenated, which equals
    /// encoding the whole string for tokenizers that split on the special token (word-level, GPT-2 BPE).
    /// Sequences longer than <paramref name="maxLength"/> are cut at the end.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt alone needs all <paramref name="maxLength"/> positions.</exception>
    public static EncodedExample Encode(ITextTokenizer tokenizer, string source, string target, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        IReadOnlyList<int> prompt = EncodePrompt(tokenizer, source);
        if (prompt.Count >= maxLength)
        {
            throw new ArgumentException(
                $"The source needs {prompt.Count} tokens with its end token, which leaves no room for the target within the model's {maxLength} positions: '{Shorten(source)}'.");
        }

        IReadOnlyList<int> continuation = EncodeText(tokenizer, Continuation(target));
        int length = Math.Min(maxLength, prompt.Count + continuation.Count);
        var ids = new int[length];
        var labels = new int[length];
        for (int i = 0; i < length; i++)
        {
            if (i < prompt.Count)
            {
                ids[i] = prompt[i];
                labels[i] = IgnoreIndex;
            }
            else
            {
                ids[i] = continuation[i - prompt.Count];
                labels[i] = ids[i];
            }
        }

        return new EncodedExample(ids, labels);
    }

    /// <summary>Right-pads to the longest sequence (or to <paramref name="minLength"/>, if longer) with <paramref name="pad"/>; labels are <see cref="IgnoreIndex"/> at pads.</summary>
    public static CausalLmBatch Collate(IReadOnlyList<EncodedExample> examples, int pad, Device? device = null, int minLength = 0)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0)
        {
            throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        }

        int b = examples.Count;
        int t = Math.Max(minLength, examples.Max(e => e.InputIds.Length));
        var ids = new long[b * t];
        var labels = new long[b * t];
        long tokens = 0, targets = 0;
        for (int r = 0; r < b; r++)
        {
            EncodedExample e = examples[r];
            for (int c = 0; c < t; c++)
            {
                bool real = c < e.InputIds.Length;
                ids[r * t + c] = real ? e.InputIds[c] : pad;
                labels[r * t + c] = real ? e.Labels[c] : IgnoreIndex;
                if (real) tokens++;
                if (real && e.Labels[c] != IgnoreIndex) targets++;
            }
        }

        ReadOnlySpan<long> shape = [b, t];
        return new CausalLmBatch(
            tensor(ids, shape, ScalarType.Int64, device),
            tensor(labels, shape, ScalarType.Int64, device),
            tokens,
            targets);
    }

    /// <summary>
    /// The training loss of a batch: <see cref="TrainingLoss.TokenMean"/> is <see cref="Loss(Tensor, Tensor, bool)"/>;
    /// <see cref="TrainingLoss.SequenceSum"/> is the sum of all target-token losses divided by the number of sequences B.
    /// </summary>
    public static Tensor Loss(Tensor logits, Tensor labels, TrainingLoss loss)
    {
        if (loss == TrainingLoss.TokenMean)
        {
            return Loss(logits, labels);
        }

        using var total = Loss(logits, labels, sum: true);
        return total / logits.shape[0];
    }

    /// <summary>
    /// Token-level cross-entropy of logits [B,T,V] against labels [B,T] (shifted by one: logits at i predict label i+1),
    /// ignoring <see cref="IgnoreIndex"/>; <paramref name="sum"/> gives the sum instead of the mean.
    /// </summary>
    public static Tensor Loss(Tensor logits, Tensor labels, bool sum = false)
    {
        long v = logits.shape[2];
        long t = logits.shape[1];
        using var shiftedLogits = logits.narrow(1, 0, t - 1).reshape(-1, v);
        using var shiftedLabels = labels.narrow(1, 1, t - 1).reshape(-1);
        return nn.functional.cross_entropy(
            shiftedLogits,
            shiftedLabels,
            ignore_index: IgnoreIndex,
            reduction: sum ? nn.Reduction.Sum : nn.Reduction.Mean);
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
