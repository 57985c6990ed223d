using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Orchestrator.Training.Tests.Reference;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

/// <summary>
/// GPT-2 byte-level BPE through Microsoft.ML.Tokenizers, on vocab.json/merges.txt files the tests write, against a plain
/// implementation of GPT-2's algorithm written here (pre-tokenizer regex, byte alphabet, lowest-rank-first merging).
/// </summary>
public sealed class Gpt2BpeTokenizerTests : IDisposable
{
    private static readonly string[] TrickyTexts =
    [
        "Hello world",
        " the cat and the hat",
        "  leading, and   inner   runs of spaces  ",
        "tabs\tand\nnewlines\n\n\nand \r\n CRLF",
        "don't I'll we've they're she's I'm he'd DON'T",
        "café naïve résumé Ærøskøbing ñ",
        "日本語のテキストと中文",
        "emoji 😀👍🏽 and flags 🇫🇷 and ZWJ 👩‍👩‍👧",
        "<|endoftext|>text<|endoftext|> between <|endoftext|>",
        "numbers 12345 3.14 1,000,000 and 2nd",
        "punctuation!!! ...?? (brackets) [x] {y} \"quotes\" 'single'",
        "trailing space ",
        "\u00A0non-breaking\u2009thin space",
        "",
        " ",
        "name : The Eagle | eatType : pub | food : Italian",
    ];

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-bpe-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>256 byte tokens, these merges (in rank order) and the end token last.</summary>
    private static readonly string[] Merges =
    [
        "Ġ t", "h e", "Ġt he", "Ġ a", "n d", "Ġa nd", "i n", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "' s", "' t", "Ġ Ġ",
        "ĠĠ ĠĠ", "Ċ Ċ", "e r", "Ã ©", "c a", "ca f", "caf Ã©", "Ġ c", "Ġc a", "a t", "Ġc at", "1 2", "12 3", "æ Ĺ", "ð Ł",
        "Ġ |", "Ġ :", "a m", "e ,",
    ];

    private (string Vocab, string Merges) WriteFiles(IEnumerable<string> merges)
    {
        var chars = HfGpt2Fixture.ByteChars();
        var vocab = new Dictionary<string, int>();
        foreach (char c in chars) vocab[c.ToString()] = vocab.Count;
        foreach (string m in merges)
        {
            string merged = m.Replace(" ", "");
            vocab.TryAdd(merged, vocab.Count);
        }

        vocab["<|endoftext|>"] = vocab.Count;
        string vocabPath = Path.Combine(_dir.FullName, "vocab.json");
        string mergesPath = Path.Combine(_dir.FullName, "merges.txt");
        File.WriteAllText(vocabPath, JsonSerializer.Serialize(vocab));
        File.WriteAllText(mergesPath, "#version: 0.2\n" + string.Join("\n", merges) + "\n");
        return (vocabPath, mergesPath);
    }

    [Fact]
    public void Encoding_equals_a_plain_implementation_of_gpt2_bpe_and_decoding_is_exact_on_tricky_text()
    {
        var (vocabPath, mergesPath) = WriteFiles(Merges);
        var tokenizer = Gpt2BpeTokenizer.Load(vocabPath, mergesPath);
        var reference = new ReferenceBpe(vocabPath, mergesPath);
        Assert.Equal(256 + Merges.Length + 1, tokenizer.VocabSize);
        Assert.Equal(tokenizer.VocabSize - 1, tokenizer.EndOfText);
        Assert.Equal(tokenizer.EndOfText, tokenizer.Pad);
        foreach (string text in TrickyTexts)
        {
            var ids = tokenizer.Encode(text);
            Assert.Equal(reference.Encode(text), ids);
            Assert.Equal(text, tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void Hand_checked_cases()
    {
        var (vocabPath, mergesPath) = WriteFiles(Merges);
        var tokenizer = Gpt2BpeTokenizer.Load(vocabPath, mergesPath);
        string[] Tokens(string text) => tokenizer.Encode(text).Select(id => tokenizer.Token(id)!).ToArray();

        Assert.Equal(["Ġthe"], Tokens(" the"));
        Assert.Equal(["t", "he"], Tokens("the"));
        Assert.Equal(["Ġand", "Ġthe", "Ġworld", "'s"], Tokens(" and the world's"));
        // Lowest rank first: "c a" (19) merges before "Ġ c" (22), so "Ġc at" (25) never applies.
        Assert.Equal(["Ġ", "ca", "t"], Tokens(" cat"));
        Assert.Equal(["café"], Tokens("café").Select(t => Encoding.UTF8.GetString(Bytes(t))).ToArray());
        // GPT-2's whitespace rule: a run of spaces keeps its last space for the next word.
        Assert.Equal(["ĠĠĠĠ", "Ġ", "Ġa"], Tokens("      a"));
        Assert.Equal(["I", "'", "l", "l"], Tokens("I'll"));
        Assert.Equal(["ĊĊ", "Ċ"], Tokens("\n\n\n"));
        Assert.Equal([tokenizer.EndOfText], tokenizer.Encode("<|endoftext|>"));
        Assert.Equal(["Ġ", "<|endoftext|>", "Ġ|"], Tokens(" <|endoftext|> |"));
    }

    [Fact]
    public void Newline_tokens_are_those_with_a_line_break()
    {
        var (vocabPath, mergesPath) = WriteFiles(Merges);
        var tokenizer = Gpt2BpeTokenizer.Load(vocabPath, mergesPath);
        var newline = TokenizerFiles.NewlineTokenIds(tokenizer).Select(id => tokenizer.Token(id)).ToHashSet();
        Assert.Equal(new HashSet<string?> { "Ċ", "č", "ĊĊ" }, newline);
        Assert.Empty(TokenizerFiles.NewlineTokenIds(TestData.SymbolTokenizer()));
    }

    [Fact]
    public void Save_then_load_gives_the_same_tokenizer_and_files_are_found_in_a_folder()
    {
        var (vocabPath, mergesPath) = WriteFiles(Merges);
        var tokenizer = Gpt2BpeTokenizer.Load(vocabPath, mergesPath);
        string copy = Path.Combine(_dir.FullName, "copy");
        tokenizer.Save(copy);
        var again = Assert.IsType<Gpt2BpeTokenizer>(TokenizerFiles.Load(copy));
        Assert.Equal(tokenizer.Vocabulary.OrderBy(kv => kv.Value), again.Vocabulary.OrderBy(kv => kv.Value));
        Assert.Equal(tokenizer.Merges, again.Merges);
        foreach (string text in TrickyTexts) Assert.Equal(tokenizer.Encode(text), again.Encode(text));
    }

    [Fact]
    public void Malformed_files_are_refused_with_the_reason()
    {
        var (vocabPath, mergesPath) = WriteFiles(["a b", "x y"]);
        File.WriteAllText(mergesPath, "a b\nq z\n");
        var e = Assert.Throws<FormatException>(() => Gpt2BpeTokenizer.Load(vocabPath, mergesPath));
        Assert.Contains("'qz'", e.Message);
        File.WriteAllText(vocabPath, "{\"a\": 0}");
        e = Assert.Throws<FormatException>(() => Gpt2BpeTokenizer.Load(vocabPath, mergesPath));
        Assert.Contains("<|endoftext|>", e.Message);
    }

    [Fact]
    public void Bpe_learnt_from_a_corpus_is_deterministic_compresses_and_encodes_like_the_reference()
    {
        var corpus = Data.Synthetic.PretrainCorpus.Generate(300, 1);
        var a = BpeTrainer.Train(corpus, 600);
        var b = BpeTrainer.Train(corpus, 600);
        Assert.Equal(a.Merges, b.Merges);
        Assert.Equal(600, a.VocabSize);
        Assert.Equal(599, a.EndOfText);
        Assert.Equal(600 - 257, a.Merges.Count);

        a.Save(_dir.FullName);
        var reference = new ReferenceBpe(Path.Combine(_dir.FullName, "vocab.json"), Path.Combine(_dir.FullName, "merges.txt"));
        long bytes = 0, tokens = 0;
        foreach (string text in corpus.Take(50).Concat(TrickyTexts))
        {
            var ids = a.Encode(text);
            Assert.Equal(reference.Encode(text), ids);
            Assert.Equal(text, a.Decode(ids));
            bytes += Encoding.UTF8.GetByteCount(text);
            tokens += ids.Count;
        }

        Assert.True(tokens * 2.5 < bytes, $"{tokens} tokens for {bytes} bytes");
        Assert.NotEqual(a.Merges, BpeTrainer.Train(corpus.Take(100), 600).Merges);
    }

    private static byte[] Bytes(string token)
    {
        var chars = HfGpt2Fixture.ByteChars();
        return token.Select(c => (byte)Array.IndexOf(chars, c)).ToArray();
    }

    /// <summary>GPT-2's tokenizer algorithm, written out plainly.</summary>
    private sealed class ReferenceBpe
    {
        private readonly Dictionary<string, int> _vocab;
        private readonly Dictionary<(string, string), int> _ranks = [];
        private readonly Regex _split = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");
        private readonly char[] _chars = HfGpt2Fixture.ByteChars();

        public ReferenceBpe(string vocabPath, string mergesPath)
        {
            _vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabPath))!;
            foreach (string line in File.ReadAllLines(mergesPath).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)))
            {
                var parts = line.Split(' ');
                _ranks[(parts[0], parts[1])] = _ranks.Count;
            }
        }

        public List<int> Encode(string text)
        {
            var ids = new List<int>();
            string[] pieces = text.Split("<|endoftext|>");
            for (int p = 0; p < pieces.Length; p++)
            {
                if (p > 0) ids.Add(_vocab["<|endoftext|>"]);
                foreach (Match m in _split.Matches(pieces[p]))
                {
                    var word = Encoding.UTF8.GetBytes(m.Value).Select(b => _chars[b].ToString()).ToList();
                    while (word.Count > 1)
                    {
                        int best = -1, bestRank = int.MaxValue;
                        for (int i = 0; i + 1 < word.Count; i++)
                        {
                            if (_ranks.TryGetValue((word[i], word[i + 1]), out int rank) && rank < bestRank)
                            {
                                (best, bestRank) = (i, rank);
                            }
                        }

                        if (best < 0) break;
                        var (x, y) = (word[best], word[best + 1]);
                        var merged = new List<string>();
                        for (int i = 0; i < word.Count; i++)
                        {
                            if (i + 1 < word.Count && word[i] == x && word[i + 1] == y)
                            {
                                merged.Add(x + y);
                                i++;
                            }
                            else
                            {
                                merged.Add(word[i]);
                            }
                        }

                        word = merged;
                    }

                    ids.AddRange(word.Select(w => _vocab[w]));
                }
            }

            return ids;
        }
    }
}
