using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.Training.Tokenization;

/// <summary>
/// A small-vocabulary tokenizer for tiny demo and test models: one id per word or punctuation character seen in a corpus.
/// <para>
/// Splitting: whitespace separates; a word is a run of letters, digits and combining marks, which may contain an
/// apostrophe or hyphen between two such characters ("don't", "family-friendly") and a '.' or ',' between two digits
/// ("12.5", "1,800"); every other character (punctuation, symbols) is a token of its own. Case is kept. The literal
/// <c>&lt;|endoftext|&gt;</c> is one token wherever it appears.
/// </para>
/// <para>
/// Decoding joins tokens with single spaces, except that <c>. , ; : ! ? % ) ] }</c> and closing quotes attach to the
/// previous token and <c>( [ {</c>, opening quotes and currency signs attach to the next one; a straight double quote
/// alternates between opening and closing. So decode(encode(x)) == x for ordinary single-spaced sentences; runs of
/// whitespace and other spacing (e.g. "a / b" vs "a/b") are normalised.
/// </para>
/// <para>
/// Ids: 0 = <c>&lt;|endoftext|&gt;</c>, 1 = <c>&lt;pad&gt;</c>, 2 = <c>&lt;unk&gt;</c>, then words by frequency (descending),
/// ties in ordinal string order, so the vocabulary is deterministic for a corpus.
/// </para>
/// </summary>
public sealed class WordLevelTokenizer : ITextTokenizer
{
    public const string EndOfTextToken = "<|endoftext|>";
    public const string PadToken = "<pad>";
    public const string UnknownToken = "<unk>";
    private const string FormatName = "orchestrator-word-level";
    private const int FormatVersion = 1;

    private static readonly string[] SpecialTokens = [EndOfTextToken, PadToken, UnknownToken];
    private const string AttachToPrevious = ".,;:!?%)]}\u201D\u2019\u00BB";
    private const string AttachToNext = "([{\u201C\u2018\u00AB$\u00A3\u20AC\u00A5";

    private readonly string[] _tokens;
    private readonly Dictionary<string, int> _ids;

    private WordLevelTokenizer(string[] tokens)
    {
        for (int i = 0; i < SpecialTokens.Length; i++)
        {
            if (tokens.Length <= i || tokens[i] != SpecialTokens[i])
            {
                throw new FormatException($"Word-level vocabulary must start with {string.Join(", ", SpecialTokens)}.");
            }
        }

        _tokens = tokens;
        _ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!_ids.TryAdd(tokens[i], i))
            {
                throw new FormatException($"Word-level vocabulary lists '{tokens[i]}' twice.");
            }
        }
    }

    public int VocabSize => _tokens.Length;

    public int EndOfText => 0;

    public int Pad => 1;

    /// <summary>None.</summary>
    public int? BeginToken => null;

    /// <summary>Id of <c>&lt;unk&gt;</c>, used for words not in the vocabulary.</summary>
    public int Unknown => 2;

    /// <summary>The vocabulary in id order.</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    /// <summary>
    /// Builds the vocabulary from a corpus: every piece (see the class remarks) that occurs at least
    /// <paramref name="minCount"/> times. Special tokens in the texts are not counted.
    /// </summary>
    public static WordLevelTokenizer Build(IEnumerable<string> texts, int minCount = 1)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(minCount, 1);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string text in texts)
        {
            foreach (string piece in Split(text))
            {
                if (piece != EndOfTextToken)
                {
                    counts[piece] = counts.GetValueOrDefault(piece) + 1;
                }
            }
        }

        var words = counts
            .Where(kv => kv.Value >= minCount && Array.IndexOf(SpecialTokens, kv.Key) < 0)
            .OrderByDescending(kv => kv.Value)
            .ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Key);
        return new WordLevelTokenizer([.. SpecialTokens, .. words]);
    }

    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        foreach (string piece in Split(text))
        {
            ids.Add(_ids.TryGetValue(piece, out int id) ? id : Unknown);
        }

        return ids;
    }

    /// <summary>Decodes ids; <c>&lt;pad&gt;</c> is skipped, other special tokens are written out.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        bool glueNext = true;
        bool insideDoubleQuote = false;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_tokens.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id outside the vocabulary of {_tokens.Length}.");
            }

            if (id == Pad)
            {
                continue;
            }

            string token = _tokens[id];
            bool attachPrevious;
            bool attachNext;
            if (token == "\"")
            {
                attachPrevious = insideDoubleQuote;
                attachNext = !insideDoubleQuote;
                insideDoubleQuote = !insideDoubleQuote;
            }
            else
            {
                bool single = token.Length == 1;
                attachPrevious = single && AttachToPrevious.Contains(token[0]);
                attachNext = single && AttachToNext.Contains(token[0]);
            }

            if (!glueNext && !attachPrevious)
            {
                text.Append(' ');
            }

            text.Append(token);
            glueNext = attachNext;
        }

        return text.ToString();
    }

    /// <summary>Writes the vocabulary as JSON.</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var root = new JsonObject
        {
            ["type"] = FormatName,
            ["version"] = FormatVersion,
            ["tokens"] = new JsonArray(_tokens.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
        };
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), new UTF8Encoding(false));
    }

    /// <summary>Reads a vocabulary written by <see cref="Save"/>.</summary>
    /// <exception cref="FormatException">The file is not a word-level vocabulary of a supported version.</exception>
    public static WordLevelTokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        JsonNode root = JsonNode.Parse(File.ReadAllText(path, Encoding.UTF8)) ?? throw new FormatException($"{path} is empty.");
        string? type = root["type"]?.GetValue<string>();
        int version = root["version"]?.GetValue<int>() ?? 0;
        if (type != FormatName || version != FormatVersion)
        {
            throw new FormatException($"{path} is not a word-level vocabulary (type '{type}', version {version}; expected '{FormatName}' version {FormatVersion}).");
        }

        JsonArray tokens = root["tokens"] as JsonArray ?? throw new FormatException($"{path} has no 'tokens' array.");
        return new WordLevelTokenizer(tokens.Select(t => t?.GetValue<string>() ?? throw new FormatException($"{path} has a null token.")).ToArray());
    }

    /// <summary>Splits text into the pieces described in the class remarks.</summary>
    public static IEnumerable<string> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            if (c == '<' && string.CompareOrdinal(text, i, EndOfTextToken, 0, EndOfTextToken.Length) == 0)
            {
                yield return EndOfTextToken;
                i += EndOfTextToken.Length;
                continue;
            }

            if (IsWordChar(text, i))
            {
                int start = i;
                i += CharLength(text, i);
                while (i < text.Length)
                {
                    if (IsWordChar(text, i))
                    {
                        i += CharLength(text, i);
                    }
                    else if (IsJoiner(text, i))
                    {
                        i++;
                    }
                    else
                    {
                        break;
                    }
                }

                yield return text[start..i];
                continue;
            }

            int length = CharLength(text, i);
            yield return text.Substring(i, length);
            i += length;
        }
    }

    private static int CharLength(string text, int i) =>
        char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;

    private static bool IsWordChar(string text, int i)
    {
        UnicodeCategory category = CharUnicodeInfo.GetUnicodeCategory(text, i);
        return category is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.ConnectorPunctuation;
    }

    /// <summary>An apostrophe or hyphen between word characters, or '.'/',' between digits, stays inside the word.</summary>
    private static bool IsJoiner(string text, int i)
    {
        if (i == 0 || i + 1 >= text.Length || !IsWordChar(text, i - 1) || !IsWordChar(text, i + 1))
        {
            return false;
        }

        char c = text[i];
        return c switch
        {
            '\'' or '\u2019' or '-' => true,
            '.' or ',' => char.IsDigit(text[i - 1]) && char.IsDigit(text[i + 1]),
            _ => false,
        };
    }
}
