namespace Orchestrator.Training.Tokenization;

/// <summary>Text ↔ token ids. Ids are in [0, VocabSize).</summary>
public interface ITextTokenizer
{
    /// <summary>Number of ids (the model's vocabulary size).</summary>
    int VocabSize { get; }

    /// <summary>Id of <c>&lt;|endoftext|&gt;</c>, which separates source and target and ends a target.</summary>
    int EndOfText { get; }

    /// <summary>Id used for padding (never a loss target).</summary>
    int Pad { get; }

    /// <summary>
    /// The begin-of-sequence id put once before every text the model is given (a training sequence's source, a decoding
    /// prompt, <c>orchestrator generate --input</c>), or null: a Llama-family folder whose Hugging Face tokenizer adds one
    /// (Llama 2, Mistral, Llama 3; see <c>Orchestrator.Data.LlamaBeginToken</c>). <see cref="Encode"/> never adds it.
    /// </summary>
    int? BeginToken { get; }

    /// <summary>Encodes text; the literal <c>&lt;|endoftext|&gt;</c> inside it becomes <see cref="EndOfText"/>.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>Decodes ids back into text.</summary>
    string Decode(IEnumerable<int> ids);
}

/// <summary>Encoding with the begin token.</summary>
public static class TextTokenizerExtensions
{
    /// <summary>The ids a model is given for <paramref name="text"/>: <see cref="ITextTokenizer.BeginToken"/> first when there is one.</summary>
    public static IReadOnlyList<int> EncodeWithBegin(this ITextTokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = tokenizer.Encode(text);
        return tokenizer.BeginToken is { } begin ? [begin, .. ids] : ids;
    }
}
