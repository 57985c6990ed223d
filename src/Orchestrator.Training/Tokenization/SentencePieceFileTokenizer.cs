using Microsoft.ML.Tokenizers;

namespace Orchestrator.Training.Tokenization;

/// <summary>
/// A SentencePiece BPE <c>tokenizer.model</c> (Llama 2, Mistral) through Microsoft.ML.Tokenizers' <see cref="LlamaTokenizer"/>:
/// the model's own normalizer (dummy prefix, ▁ for spaces), byte fallback and end id. <see cref="Encode"/> adds no begin
/// token; <see cref="BeginToken"/> is the one the folder's tokenizer puts first (<see cref="Orchestrator.Data.LlamaBeginToken"/>),
/// which the loader passes.
/// </summary>
public sealed class SentencePieceFileTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.model";

    private readonly LlamaTokenizer _sp;

    private SentencePieceFileTokenizer(LlamaTokenizer sp, int? endOfText, int? beginToken)
    {
        _sp = sp;
        VocabSize = sp.Vocabulary.Count == 0 ? 0 : sp.Vocabulary.Values.Max() + 1;
        EndOfText = endOfText ?? sp.EndOfSentenceId;
        BeginOfSentence = sp.BeginningOfSentenceId;
        BeginToken = beginToken;
    }

    public int VocabSize { get; }

    public int EndOfText { get; }

    /// <summary>The end id (Llama 2 defines no pad; batches mask padding by length).</summary>
    public int Pad => EndOfText;

    /// <summary>The model's own begin id (&lt;s&gt;).</summary>
    public int BeginOfSentence { get; }

    /// <summary>The id put before every text the model is given (null: none).</summary>
    public int? BeginToken { get; }

    /// <summary>True when the folder has a tokenizer.model.</summary>
    public static bool ExistsIn(string directory) => File.Exists(Path.Combine(directory, FileName));

    /// <summary>
    /// Reads a SentencePiece model file; <paramref name="endOfText"/> overrides its eos id (from the config);
    /// <paramref name="beginToken"/> becomes <see cref="BeginToken"/>.
    /// </summary>
    /// <exception cref="FormatException">Not a SentencePiece BPE model.</exception>
    public static SentencePieceFileTokenizer Load(string path, int? endOfText = null, int? beginToken = null)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return new SentencePieceFileTokenizer(LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false), endOfText, beginToken);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or NotSupportedException or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new FormatException($"{path} is not a SentencePiece BPE model that can be read ({e.Message}).", e);
        }
    }

    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
    }

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _sp.Decode(ids, considerSpecialTokens: true);
    }
}
