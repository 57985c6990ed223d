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

    /// <summary>Encodes text; the literal <c>&lt;|endoftext|&gt;</c> inside it becomes <see cref="EndOfText"/>.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>Decodes ids back into text.</summary>
    string Decode(IEnumerable<int> ids);
}
