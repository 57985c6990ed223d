using System.Text.Json;

namespace Orchestrator.Training.Tests.Reference;

/// <summary>
/// A hand-built byte-level tokenizer.json for the tiny Llama checkpoints of <see cref="HfLlamaFixture"/>: no merges, ids
/// 0–255 the bytes (GPT-2's byte alphabet), <see cref="End"/> &lt;/s&gt;, <see cref="Begin"/> &lt;|begin_of_text|&gt;.
/// </summary>
internal static class HfLlamaTokenizer
{
    public const int End = 256;
    public const int Begin = 257;

    /// <summary>Llama 3's post-processor: a Sequence of ByteLevel and a TemplateProcessing that puts &lt;|begin_of_text|&gt; first.</summary>
    public const string Llama3Template = """
        {"type": "Sequence", "processors": [{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
          {"type": "TemplateProcessing",
           "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
           "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
           "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [257], "tokens": ["<|begin_of_text|>"]}}}]}
        """;

    /// <summary>
    /// The byte-level tokenizer.json (ids 0–255 the bytes, 256 &lt;/s&gt;, 257 &lt;|begin_of_text|&gt;) with this post-processor,
    /// generation_config.json with eos 256, and a tokenizer_config.json when given.
    /// </summary>
    public static void Write(string folder, string postProcessor, string? tokenizerConfig)
    {
        char[] chars = HfGpt2Fixture.ByteChars();
        var vocab = Enumerable.Range(0, 256).ToDictionary(b => chars[b].ToString(), b => b);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), $$$"""
            {"version": "1.0",
             "added_tokens": [{"id": {{{End}}}, "content": "</s>", "special": true}, {"id": {{{Begin}}}, "content": "<|begin_of_text|>", "special": true}],
             "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
             "post_processor": {{{postProcessor}}}, "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {{{JsonSerializer.Serialize(vocab)}}}, "merges": []}}
            """);
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), $$"""{"eos_token_id": {{End}}}""");
        if (tokenizerConfig is not null) File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), tokenizerConfig);
    }
}
