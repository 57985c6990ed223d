namespace Orchestrator.Training.Tokenization;

/// <summary>Finding a model folder's tokenizer, and facts about tokenizers that decoding needs.</summary>
public static class TokenizerFiles
{
    /// <summary>
    /// The tokenizer of a model folder: GPT-2 BPE when it has <c>vocab.json</c> and <c>merges.txt</c>, else the word-level
    /// vocabulary <c>tokenizer.word-level.json</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither is there.</exception>
    public static ITextTokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (Gpt2BpeTokenizer.ExistsIn(directory))
        {
            return Gpt2BpeTokenizer.LoadDirectory(directory);
        }

        string wordLevel = Path.Combine(directory, Checkpoints.ModelCheckpoint.WordLevelTokenizerFile);
        if (File.Exists(wordLevel))
        {
            return WordLevelTokenizer.Load(wordLevel);
        }

        throw new FileNotFoundException(
            $"No tokenizer in {directory}: expected {Gpt2BpeTokenizer.VocabFile} + {Gpt2BpeTokenizer.MergesFile} (GPT-2 BPE) or {Checkpoints.ModelCheckpoint.WordLevelTokenizerFile}.");
    }

    /// <summary>Writes the tokenizer's files into a model folder.</summary>
    /// <exception cref="NotSupportedException">A tokenizer type without a file format.</exception>
    public static void Save(ITextTokenizer tokenizer, string directory)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        switch (tokenizer)
        {
            case Gpt2BpeTokenizer bpe:
                bpe.Save(directory);
                break;
            case WordLevelTokenizer word:
                word.Save(Path.Combine(directory, Checkpoints.ModelCheckpoint.WordLevelTokenizerFile));
                break;
            default:
                throw new NotSupportedException($"Saving a {tokenizer.GetType().Name} is not supported.");
        }
    }

    /// <summary>
    /// Ids whose text contains a line break (GPT-2: 198 "\n", 628 "\n\n" and the other whitespace runs with one). The
    /// protocol bans them when decoding table-to-text outputs. Word-level vocabularies have none.
    /// </summary>
    public static IReadOnlyList<int> NewlineTokenIds(ITextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int>();
        switch (tokenizer)
        {
            case Gpt2BpeTokenizer bpe:
                for (int id = 0; id < bpe.VocabSize; id++)
                {
                    if (id != bpe.EndOfText && bpe.Token(id) is not null && bpe.TokenBytes(id).AsSpan().IndexOfAny((byte)'\n', (byte)'\r') >= 0)
                    {
                        ids.Add(id);
                    }
                }

                break;
            case WordLevelTokenizer word:
                for (int id = 0; id < word.VocabSize; id++)
                {
                    if (word.Tokens[id].AsSpan().IndexOfAny('\n', '\r') >= 0) ids.Add(id);
                }

                break;
            default:
                for (int id = 0; id < tokenizer.VocabSize; id++)
                {
                    if (id != tokenizer.EndOfText && tokenizer.Decode([id]).AsSpan().IndexOfAny('\n', '\r') >= 0) ids.Add(id);
                }

                break;
        }

        return ids;
    }
}
