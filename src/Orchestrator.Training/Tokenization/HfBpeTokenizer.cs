using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Orchestrator.Training.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> with a byte-level BPE model (Llama 3, Qwen2, SmolLM): added tokens matched literally
/// first, an optional NFC normalizer, the pre-tokenizer chain (<c>Split</c> regexes with isolated behaviour, <c>Digits</c>,
/// <c>ByteLevel</c> with or without GPT-2's regex), then the merges of each piece through Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/>; with <c>ignore_merges</c> a piece that is itself in the vocabulary is taken whole, as the
/// tokenizers library does. Whether a begin token goes first is the folder's business (its post-processor and
/// tokenizer_config.json, <see cref="Orchestrator.Data.LlamaBeginToken"/>): the loader passes it as <see cref="BeginToken"/>.
/// Anything else that would change the ids (another model type, another normalizer or pre-tokenizer) is refused by name.
/// </summary>
public sealed class HfBpeTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.json";

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _tokens;
    private readonly HashSet<int> _special;
    private readonly (string Content, int Id)[] _added;
    private readonly List<Regex> _splits;
    private readonly bool _nfc;
    private readonly bool _addPrefixSpace;
    private readonly bool _ignoreMerges;

    private HfBpeTokenizer(Dictionary<string, int> vocab, IReadOnlyList<string> merges, (string Content, int Id, bool Special)[] added,
        List<Regex> splits, bool nfc, bool addPrefixSpace, bool ignoreMerges, int? begin, int endOfText)
    {
        _vocab = vocab;
        _splits = splits;
        _nfc = nfc;
        _addPrefixSpace = addPrefixSpace;
        _ignoreMerges = ignoreMerges;
        _added = added.OrderByDescending(a => a.Content.Length).Select(a => (a.Content, a.Id)).ToArray();
        _special = added.Select(a => a.Id).ToHashSet();
        VocabSize = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max(), added.Length == 0 ? 0 : added.Max(a => a.Id)) + 1;
        _tokens = new string?[VocabSize];
        foreach (var (token, id) in vocab) _tokens[id] = token;
        foreach (var (content, id, _) in added) _tokens[id] = content;
        BeginToken = begin;
        EndOfText = endOfText;
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(WholePiece, null),
        });
    }

    private static readonly Regex WholePiece = new("(?s).+", RegexOptions.Compiled);

    public int VocabSize { get; }

    /// <summary>The first end id (the config's eos) — training targets end with it.</summary>
    public int EndOfText { get; }

    /// <summary>The end id (these tokenizers' checkpoints rarely define a pad; batches mask padding by length).</summary>
    public int Pad => EndOfText;

    /// <summary>The id put before every text the model is given (Llama 3's &lt;|begin_of_text|&gt;), or null.</summary>
    public int? BeginToken { get; }

    /// <summary>True when the folder has a tokenizer.json.</summary>
    public static bool ExistsIn(string directory) => File.Exists(Path.Combine(directory, FileName));

    /// <summary>
    /// Reads <c>tokenizer.json</c>. <paramref name="endOfText"/> is the checkpoint's first eos id (from config.json or
    /// generation_config.json); when null, the added token <c>&lt;|endoftext|&gt;</c> or <c>&lt;/s&gt;</c> is used.
    /// <paramref name="beginToken"/> becomes <see cref="BeginToken"/> (the folder's rule; null: none).
    /// </summary>
    /// <exception cref="FormatException">Malformed file.</exception>
    /// <exception cref="NotSupportedException">A component that would change the ids and is not implemented, named.</exception>
    public static HfBpeTokenizer Load(string path, int? endOfText = null, int? beginToken = null)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException($"{path} is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path} is not valid JSON ({e.Message}).", e);
        }

        void Refuse(string what) => throw new NotSupportedException($"{path}: {what} is not implemented (byte-level BPE tokenizer.json only).");

        JsonObject model = root["model"] as JsonObject ?? throw new FormatException($"{path} has no 'model'.");
        string modelType = model["type"]?.GetValue<string>() ?? "BPE";
        if (modelType != "BPE") Refuse($"model type '{modelType}'");
        if (model["byte_fallback"]?.GetValue<bool>() == true) Refuse("model.byte_fallback (a SentencePiece-style BPE; use tokenizer.model)");
        foreach (string field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (model[field] is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0) Refuse($"model.{field}");
        }

        if (model["dropout"] is JsonValue dropout && dropout.GetValueKind() == JsonValueKind.Number && dropout.GetValue<double>() > 0) Refuse("model.dropout (BPE dropout)");

        var vocab = (model["vocab"] as JsonObject ?? throw new FormatException($"{path} has no model.vocab."))
            .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>(), StringComparer.Ordinal);
        var merges = new List<string>();
        foreach (JsonNode? merge in model["merges"] as JsonArray ?? [])
        {
            merges.Add(merge switch
            {
                JsonArray pair when pair.Count == 2 => pair[0]!.GetValue<string>() + " " + pair[1]!.GetValue<string>(),
                JsonValue text => text.GetValue<string>(),
                _ => throw new FormatException($"{path}: a merge is neither \"a b\" nor [a, b]."),
            });
        }

        bool ignoreMerges = model["ignore_merges"]?.GetValue<bool>() ?? false;

        bool nfc = false;
        switch (root["normalizer"])
        {
            case null:
                break;
            case JsonObject n when n["type"]?.GetValue<string>() == "NFC":
                nfc = true;
                break;
            case JsonObject n:
                Refuse($"normalizer '{n["type"]?.GetValue<string>()}'");
                break;
        }

        var splits = new List<Regex>();
        bool sawByteLevel = false, addPrefixSpace = false;
        void PreTokenizer(JsonObject p)
        {
            string type = p["type"]?.GetValue<string>() ?? "";
            switch (type)
            {
                case "Sequence":
                    foreach (JsonNode? inner in p["pretokenizers"] as JsonArray ?? []) PreTokenizer((JsonObject)inner!);
                    break;
                case "Split":
                    string behavior = p["behavior"]?.GetValue<string>() ?? "Isolated";
                    if (behavior != "Isolated") Refuse($"Split pre-tokenizer behaviour '{behavior}'");
                    if (p["invert"]?.GetValue<bool>() == true) Refuse("an inverted Split pre-tokenizer");
                    JsonObject pattern = p["pattern"] as JsonObject ?? throw new FormatException($"{path}: a Split pre-tokenizer has no pattern.");
                    splits.Add(pattern["Regex"] is { } regex
                        ? new Regex(regex.GetValue<string>(), RegexOptions.Compiled)
                        : new Regex(Regex.Escape(pattern["String"]?.GetValue<string>() ?? throw new FormatException($"{path}: a Split pattern is neither Regex nor String.")), RegexOptions.Compiled));
                    break;
                case "Digits":
                    splits.Add(new Regex(p["individual_digits"]?.GetValue<bool>() == true ? @"\p{N}" : @"\p{N}+", RegexOptions.Compiled));
                    break;
                case "ByteLevel":
                    sawByteLevel = true;
                    addPrefixSpace = p["add_prefix_space"]?.GetValue<bool>() ?? false;
                    if (p["use_regex"]?.GetValue<bool>() ?? true) splits.Add(new Regex(ByteLevel.Gpt2Pattern, RegexOptions.Compiled));
                    break;
                default:
                    Refuse($"pre-tokenizer '{type}'");
                    break;
            }
        }

        if (root["pre_tokenizer"] is JsonObject pre) PreTokenizer(pre);
        if (!sawByteLevel) Refuse("a tokenizer.json without a ByteLevel pre-tokenizer");

        var added = new List<(string Content, int Id, bool Special)>();
        foreach (JsonNode? token in root["added_tokens"] as JsonArray ?? [])
        {
            added.Add((token!["content"]!.GetValue<string>(), token["id"]!.GetValue<int>(), token["special"]?.GetValue<bool>() ?? false));
        }

        int end = endOfText
            ?? added.Where(a => a.Content is "<|endoftext|>" or "</s>" or "<|end_of_text|>").Select(a => (int?)a.Id).FirstOrDefault()
            ?? throw new FormatException($"{path}: no end-of-text id (config.json's eos_token_id, or an added <|endoftext|> / </s>).");
        return new HfBpeTokenizer(vocab, merges, added.ToArray(), splits, nfc, addPrefixSpace, ignoreMerges, beginToken, end);
    }

    /// <summary>Encodes text; added tokens written literally in it become their ids. No begin token is added.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        int start = 0;
        while (start <= text.Length)
        {
            var (at, id, length) = NextAdded(text, start);
            if (at > start)
            {
                EncodeSegment(text[start..at], start == 0, ids);
            }

            if (id < 0) break;
            ids.Add(id);
            start = at + length;
        }

        return ids;
    }

    /// <summary>Decodes ids to text (added tokens written out; invalid UTF-8 becomes U+FFFD).</summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            string token = (uint)id < (uint)VocabSize && _tokens[id] is { } t ? t
                : throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id outside the vocabulary of {VocabSize}.");
            bytes.AddRange(_special.Contains(id) ? Encoding.UTF8.GetBytes(token) : ByteLevel.Bytes(token) ?? Encoding.UTF8.GetBytes(token));
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private (int At, int Id, int Length) NextAdded(string text, int start)
    {
        int bestAt = text.Length, bestId = -1, bestLength = 0;
        foreach (var (content, id) in _added)
        {
            int at = text.IndexOf(content, start, StringComparison.Ordinal);
            if (at >= 0 && (at < bestAt || (at == bestAt && content.Length > bestLength)))
            {
                (bestAt, bestId, bestLength) = (at, id, content.Length);
            }
        }

        return (bestAt, bestId, bestLength);
    }

    private void EncodeSegment(string segment, bool first, List<int> ids)
    {
        if (segment.Length == 0) return;
        if (_nfc) segment = Nfc(segment);
        if (_addPrefixSpace && first && !segment.StartsWith(' ')) segment = " " + segment;
        IEnumerable<string> pieces = [segment];
        foreach (Regex split in _splits)
        {
            pieces = pieces.SelectMany(piece => Isolate(split, piece)).ToList();
        }

        foreach (string piece in pieces)
        {
            if (_ignoreMerges && _vocab.TryGetValue(ByteLevel.Encode(piece), out int whole))
            {
                ids.Add(whole);
            }
            else
            {
                ids.AddRange(_bpe.EncodeToIds(piece));
            }
        }
    }

    /// <summary>
    /// NFC of <paramref name="text"/>. The process runs with invariant globalization, where .NET cannot compose characters:
    /// text without combining marks or conjoining jamo is then returned as it is (NFC leaves it unchanged apart from rare
    /// singletons), and text with them is refused rather than tokenized differently from the checkpoint's tokenizer.
    /// </summary>
    private static string Nfc(string text)
    {
        if (CanCompose) return text.Normalize(NormalizationForm.FormC);
        foreach (char c in text)
        {
            var category = char.GetUnicodeCategory(c);
            if (category is System.Globalization.UnicodeCategory.NonSpacingMark or System.Globalization.UnicodeCategory.SpacingCombiningMark
                or System.Globalization.UnicodeCategory.EnclosingMark || c is >= '\u1100' and <= '\u11FF')
            {
                throw new NotSupportedException(
                    $"This tokenizer normalizes to NFC, which this process cannot do (invariant globalization), and the text has the combining character U+{(int)c:X4}; pass it already composed.");
            }
        }

        return text;
    }

    private static readonly bool CanCompose = Compose("e\u0301") == "\u00e9";

    private static string Compose(string text)
    {
        try
        {
            return text.Normalize(NormalizationForm.FormC);
        }
        catch (PlatformNotSupportedException)
        {
            return text;
        }
    }

    /// <summary>The matches of <paramref name="split"/> and the text between them, in order (tokenizers' Isolated behaviour).</summary>
    private static IEnumerable<string> Isolate(Regex split, string piece)
    {
        int last = 0;
        foreach (Match m in split.Matches(piece))
        {
            if (m.Length == 0) continue;
            if (m.Index > last) yield return piece[last..m.Index];
            yield return m.Value;
            last = m.Index + m.Length;
        }

        if (last < piece.Length) yield return piece[last..];
    }
}
