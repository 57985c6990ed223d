using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Orchestrator.Training.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE from a local <c>vocab.json</c> (token → id, tokens over the <see cref="ByteLevel"/> alphabet) and
/// <c>merges.txt</c> (one "a b" pair per line in rank order, an optional <c>#version</c> first line), through
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> with GPT-2's pre-tokenizer regex and <c>&lt;|endoftext|&gt;</c> as a
/// special token (so the literal text becomes its id wherever it appears).
/// <para>There is no pad token in GPT-2: <see cref="Pad"/> is the end token; batches mask padding by length.</para>
/// </summary>
public sealed class Gpt2BpeTokenizer : ITextTokenizer
{
    public const string EndOfTextToken = "<|endoftext|>";
    public const string VocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _merges;
    private readonly string?[] _tokens;

    private Gpt2BpeTokenizer(Dictionary<string, int> vocab, string[] merges)
    {
        if (!vocab.TryGetValue(EndOfTextToken, out int endOfText))
        {
            throw new FormatException($"The vocabulary has no '{EndOfTextToken}' token.");
        }

        if (vocab.Values.Any(id => id < 0))
        {
            throw new FormatException("The vocabulary has a negative id.");
        }

        foreach (string merge in merges)
        {
            int space = merge.IndexOf(' ');
            if (space <= 0 || space == merge.Length - 1 || merge.IndexOf(' ', space + 1) >= 0)
            {
                throw new FormatException($"Bad merge line '{merge}': expected two tokens separated by one space.");
            }

            string merged = string.Concat(merge.AsSpan(0, space), merge.AsSpan(space + 1));
            if (!vocab.ContainsKey(merged))
            {
                throw new FormatException($"The merge '{merge}' makes '{merged}', which is not in the vocabulary.");
            }
        }

        _vocab = vocab;
        _merges = merges;
        EndOfText = endOfText;
        VocabSize = vocab.Values.Max() + 1;
        _tokens = new string?[VocabSize];
        foreach (var (token, id) in vocab) _tokens[id] = token;

        var specials = new Dictionary<string, int> { [EndOfTextToken] = endOfText };
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(ByteLevel.Gpt2Regex(), specials),
            SpecialTokens = specials,
        });
    }

    public int VocabSize { get; }

    public int EndOfText { get; }

    /// <summary>The end token (GPT-2 has no pad token).</summary>
    public int Pad => EndOfText;

    /// <summary>None: GPT-2's tokenizer adds no begin token.</summary>
    public int? BeginToken => null;

    /// <summary>The vocabulary (token over the byte-level alphabet → id).</summary>
    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    /// <summary>The merges in rank order, each "a b".</summary>
    public IReadOnlyList<string> Merges => _merges;

    /// <summary>Builds the tokenizer from a vocabulary and merges (each "a b", in rank order).</summary>
    public static Gpt2BpeTokenizer Create(IReadOnlyDictionary<string, int> vocabulary, IEnumerable<string> merges)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(merges);
        return new Gpt2BpeTokenizer(new Dictionary<string, int>(vocabulary, StringComparer.Ordinal), merges.ToArray());
    }

    /// <summary>Reads <c>vocab.json</c> and <c>merges.txt</c>.</summary>
    /// <exception cref="FormatException">Malformed files (the message names the file).</exception>
    public static Gpt2BpeTokenizer Load(string vocabPath, string mergesPath)
    {
        ArgumentNullException.ThrowIfNull(vocabPath);
        ArgumentNullException.ThrowIfNull(mergesPath);
        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllBytes(vocabPath))
                ?? throw new FormatException($"{vocabPath} is empty.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{vocabPath} is not a JSON object of token → id ({e.Message}).", e);
        }

        var merges = new List<string>();
        foreach (string raw in File.ReadLines(mergesPath, Encoding.UTF8))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || (merges.Count == 0 && line.StartsWith("#version", StringComparison.Ordinal)))
            {
                continue;
            }

            merges.Add(line);
        }

        try
        {
            return new Gpt2BpeTokenizer(new Dictionary<string, int>(vocab, StringComparer.Ordinal), merges.ToArray());
        }
        catch (FormatException e)
        {
            throw new FormatException($"{vocabPath} / {mergesPath}: {e.Message}", e);
        }
    }

    /// <summary>Reads <c>vocab.json</c> and <c>merges.txt</c> from a folder.</summary>
    public static Gpt2BpeTokenizer LoadDirectory(string directory) =>
        Load(Path.Combine(directory, VocabFile), Path.Combine(directory, MergesFile));

    /// <summary>True if the folder has both files.</summary>
    public static bool ExistsIn(string directory) =>
        File.Exists(Path.Combine(directory, VocabFile)) && File.Exists(Path.Combine(directory, MergesFile));

    /// <summary>Writes <c>vocab.json</c> (ids ascending) and <c>merges.txt</c> (with a <c>#version: 0.2</c> line) into a folder.</summary>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        using (var stream = File.Create(Path.Combine(directory, VocabFile)))
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            foreach (var (token, id) in _vocab.OrderBy(kv => kv.Value))
            {
                json.WriteNumber(token, id);
            }

            json.WriteEndObject();
        }

        var text = new StringBuilder("#version: 0.2\n");
        foreach (string merge in _merges) text.Append(merge).Append('\n');
        File.WriteAllText(Path.Combine(directory, MergesFile), text.ToString(), new UTF8Encoding(false));
    }

    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _bpe.EncodeToIds(text);
    }

    /// <summary>Decodes ids to text (invalid UTF-8 from partial byte sequences becomes U+FFFD); the end token is written out.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyList<int> ?? ids.ToArray();
        foreach (int id in list)
        {
            if ((uint)id >= (uint)VocabSize || _tokens[id] is null)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id outside the vocabulary of {VocabSize}.");
            }
        }

        return _bpe.Decode(list, considerSpecialTokens: true);
    }

    /// <summary>The token string of <paramref name="id"/> (over the byte-level alphabet), or null for an unused id.</summary>
    public string? Token(int id) => (uint)id < (uint)VocabSize ? _tokens[id] : null;

    /// <summary>The raw bytes of token <paramref name="id"/> (the special token as its UTF-8 text).</summary>
    public byte[] TokenBytes(int id)
    {
        string token = Token(id) ?? throw new ArgumentOutOfRangeException(nameof(id), id, "Unused or out-of-range token id.");
        return id == EndOfText ? Encoding.UTF8.GetBytes(token) : ByteLevel.Bytes(token) ?? Encoding.UTF8.GetBytes(token);
    }
}
