using System.Text.Json;
using Orchestrator.Training.Tests.Reference;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

/// <summary>
/// tokenizer.json byte-level BPE on hand-built files: ids 0–255 are the bytes (GPT-2's byte alphabet), then a few merges
/// whose results are worked out by hand in each test.
/// </summary>
public sealed class HfTokenizerTests : IDisposable
{
    private const string Llama3Split = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-hftok-");

    public void Dispose() => _root.Delete(recursive: true);

    /// <summary>Merges in rank order: he(256) ll(257) hell(258) hello(259) Ġw(260) or(261) Ġwor(262); 12(264) 34(265).</summary>
    private string Write(string preTokenizer, string normalizer = "null", bool ignoreMerges = true)
    {
        char[] chars = HfGpt2Fixture.ByteChars();
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[chars[b].ToString()] = b;
        string G = chars[' '].ToString();
        string[] merges = ["h e", "l l", "he ll", "hell o", G + " w", "o r", G + "w or", "1 2", "3 4"];
        int next = 256;
        foreach (string m in merges[..7]) vocab[m.Replace(" ", "")] = next++;
        vocab[G + "world"] = next++; // 263: reachable only whole (ignore_merges)
        vocab["12"] = next++;
        vocab["34"] = next++;
        string json = $$$"""
            {"version": "1.0", "truncation": null, "padding": null,
             "added_tokens": [{"id": 266, "content": "<|begin_of_text|>", "special": true}, {"id": 267, "content": "<|end_of_text|>", "special": true}],
             "normalizer": {{{normalizer}}},
             "pre_tokenizer": {{{preTokenizer}}},
             "post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel", "trim_offsets": false},
                {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [], "special_tokens": {}}]},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": {{{(ignoreMerges ? "true" : "false")}}},
                "vocab": {{{JsonSerializer.Serialize(vocab)}}}, "merges": {{{JsonSerializer.Serialize(merges.Select(m => m.Split(' ')))}}}}}
            """;
        string path = Path.Combine(_root.FullName, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string Llama3PreTokenizer => $$"""
        {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": {{JsonSerializer.Serialize(Llama3Split)}}}, "behavior": "Isolated", "invert": false},
          {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
        """;

    [Fact]
    public void Llama3_style_split_merges_ignore_merges_and_special_tokens_give_the_hand_worked_ids()
    {
        var tokenizer = HfBpeTokenizer.Load(Write(Llama3PreTokenizer), endOfText: 267);
        // "hello" merges he, ll, hell, hello → 259; " world" is in the vocabulary whole → 263 (ignore_merges).
        Assert.Equal([259, 263], tokenizer.Encode("hello world"));
        // \p{N}{1,3} splits 12345 into 123 | 45: the merge 12 applies, the merge 34 cannot cross the split.
        Assert.Equal([264, '3', '4', '5'], tokenizer.Encode("12345"));
        Assert.Equal(['h', 'i', 267, 'h', 'i'], tokenizer.Encode("hi<|end_of_text|>hi"));
        Assert.Null(tokenizer.BeginToken); // the folder decides (LlamaBeginTokenTests); a file loaded alone adds none
        Assert.Equal([259], tokenizer.EncodeWithBegin("hello"));
        Assert.Equal(267, tokenizer.EndOfText);
        Assert.Equal(268, tokenizer.VocabSize);
        Assert.Equal("hello world<|end_of_text|>", tokenizer.Decode([259, 260, 261, 'l', 'd', 267]));
        Assert.Equal("naïve café", tokenizer.Decode(tokenizer.Encode("naïve café")));
    }

    [Fact]
    public void Without_ignore_merges_a_whole_word_in_the_vocabulary_is_still_built_by_merges()
    {
        var tokenizer = HfBpeTokenizer.Load(Write(Llama3PreTokenizer, ignoreMerges: false), endOfText: 267);
        Assert.Equal([259, 262, 'l', 'd'], tokenizer.Encode("hello world"));
    }

    [Fact]
    public void Qwen2_style_nfc_normalizer_composes_or_refuses_what_it_cannot_compose()
    {
        var tokenizer = HfBpeTokenizer.Load(Write(Llama3PreTokenizer, normalizer: """{"type": "NFC"}"""), endOfText: 267);
        Assert.Equal([0xC3, 0xA9], tokenizer.Encode("\u00e9")); // é: UTF-8 C3 A9
        // The tests run with invariant globalization, like the program: a decomposed é cannot be composed, so it is refused.
        var e = Assert.Throws<NotSupportedException>(() => tokenizer.Encode("e\u0301"));
        Assert.Contains("U+0301", e.Message);
        var plain = HfBpeTokenizer.Load(Write(Llama3PreTokenizer), endOfText: 267);
        Assert.Equal(['e', 0xCC, 0x81], plain.Encode("e\u0301"));
    }

    [Fact]
    public void SmolLM_style_individual_digits_then_gpt2_regex()
    {
        string pre = """{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}""";
        var tokenizer = HfBpeTokenizer.Load(Write(pre, ignoreMerges: false), endOfText: 267);
        // Digits isolates 1 and 2, so the merge 12 never applies; GPT-2's regex then splits "a " into "a" and " ".
        Assert.Equal(['a', ' ', '1', '2'], tokenizer.Encode("a 12"));
        Assert.Equal([259, 262, 'l', 'd'], tokenizer.Encode("hello world"));
    }

    [Theory]
    [InlineData("""{"type": "Metaspace", "replacement": "▁"}""", "pre-tokenizer 'Metaspace'")]
    [InlineData("""{"type": "Whitespace"}""", "pre-tokenizer 'Whitespace'")]
    public void Other_pre_tokenizers_are_refused_by_name(string pre, string named)
    {
        var e = Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Load(Write(pre), endOfText: 267));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void Other_normalizers_are_refused_by_name()
    {
        var e = Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Load(Write(Llama3PreTokenizer, normalizer: """{"type": "Lowercase"}"""), endOfText: 267));
        Assert.Contains("normalizer 'Lowercase'", e.Message);
    }
}
