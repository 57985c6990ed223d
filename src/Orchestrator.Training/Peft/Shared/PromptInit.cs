using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>Token ids that initialise a prompt of virtual tokens (prompt tuning, black-box tuning).</summary>
internal static class PromptInit
{
    /// <summary>Ids sampled from, for our tokenizers, roughly the most frequent tokens.</summary>
    public const int VocabularySample = 5000;

    /// <summary><paramref name="length"/> ids drawn uniformly from the first <see cref="VocabularySample"/> ids (seeded by the context).</summary>
    public static long[] VocabularyIds(PeftContext context, ModelShape config, int length)
    {
        int limit = VocabularyLimit(context, config);
        var random = new Random(unchecked((int)(context.Seed * 2654435761L ^ 0x51A3)));
        return Enumerable.Range(0, length).Select(_ => (long)random.Next(limit)).ToArray();
    }

    /// <summary>How many ids <see cref="VocabularyIds"/> samples from (the whole vocabulary only when it has at most <see cref="VocabularySample"/>).</summary>
    public static int VocabularyLimit(PeftContext context, ModelShape config) =>
        Math.Min(VocabularySample, context.Tokenizer?.VocabSize ?? config.VocabSize);

    /// <summary>
    /// The ids Hugging Face PEFT initialises a TEXT prompt from, <c>tokenizer(' ' + text)["input_ids"]</c>, repeated or cut to
    /// <paramref name="length"/>: the tokens of <c>' ' + text</c> after the tokenizer's begin token when it adds one (a
    /// Llama-family folder's, <see cref="ITextTokenizer.BeginToken"/>; GPT-2's adds none).
    /// </summary>
    public static long[] TextIds(PeftContext context, string method, string text, int length)
    {
        var tokenizer = context.Tokenizer ?? throw new InvalidOperationException($"{method}: init=text needs the tokenizer (PeftContext.Tokenizer).");
        if (tokenizer.Encode(" " + text).Count == 0) throw new ArgumentException($"{method}: init_text '{text}' has no tokens.");
        var tokens = tokenizer.EncodeWithBegin(" " + text).Select(i => (long)i).ToArray();
        return Enumerable.Range(0, length).Select(i => tokens[i % tokens.Length]).ToArray();
    }
}
