using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

public sealed class TokenizerTests
{
    private static readonly string[] Corpus =
    [
        "The Eagle is a pub near Café Rouge, rated 5 out of 5.",
        "Blue Spice (a coffee shop) is family-friendly; it isn't cheap: prices are £20-25!",
        "Is it \"good\"? Yes, it costs 12.5 or 1,800 points.",
    ];

    [Theory]
    [InlineData("The Eagle is a pub near Café Rouge, rated 5 out of 5.")]
    [InlineData("Blue Spice (a coffee shop) is family-friendly; it isn't cheap: prices are £20-25!")]
    [InlineData("Is it \"good\"? Yes, it costs 12.5 or 1,800 points.")]
    public void Decode_of_encode_is_the_identity_for_ordinary_sentences(string text)
    {
        var tokenizer = WordLevelTokenizer.Build(Corpus);
        IReadOnlyList<int> ids = tokenizer.Encode(text);
        Assert.DoesNotContain(tokenizer.Unknown, ids);
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Splits_words_and_single_punctuation_keeping_case()
    {
        Assert.Equal(
            ["The", "Eagle", "is", "near", "Café", "Rouge", ",", "rated", "5", "."],
            WordLevelTokenizer.Split("The Eagle is  near Café Rouge, rated 5."));
        Assert.Equal(["family-friendly", "isn't", "12.5", "(", "x", ")", "!", "?"], WordLevelTokenizer.Split("family-friendly isn't 12.5 (x)!?"));
    }

    [Fact]
    public void End_of_text_is_one_token_inside_text_and_specials_have_fixed_ids()
    {
        var tokenizer = WordLevelTokenizer.Build(Corpus);
        Assert.Equal(0, tokenizer.EndOfText);
        Assert.Equal(1, tokenizer.Pad);
        Assert.Equal(2, tokenizer.Unknown);
        IReadOnlyList<int> ids = tokenizer.Encode(" The Eagle <|endoftext|> rated 5<|endoftext|>");
        Assert.Equal(2, ids.Count(i => i == tokenizer.EndOfText));
        Assert.Equal(tokenizer.EndOfText, ids[2]);
        Assert.Equal(tokenizer.EndOfText, ids[^1]);
        Assert.Equal("The Eagle <|endoftext|> rated 5 <|endoftext|>", tokenizer.Decode(ids));
        Assert.Equal(tokenizer.Unknown, tokenizer.Encode("zebra")[0]);
        Assert.Equal("rated", tokenizer.Decode([tokenizer.Pad, tokenizer.Encode("rated")[0], tokenizer.Pad]));
    }

    [Fact]
    public void Vocabulary_order_is_frequency_then_ordinal_and_min_count_filters()
    {
        var tokenizer = WordLevelTokenizer.Build(["b a a c", "c a B"], minCount: 1);
        Assert.Equal(["<|endoftext|>", "<pad>", "<unk>", "a", "c", "B", "b"], tokenizer.Tokens);
        var filtered = WordLevelTokenizer.Build(["b a a c", "c a B"], minCount: 2);
        Assert.Equal(["<|endoftext|>", "<pad>", "<unk>", "a", "c"], filtered.Tokens);
        Assert.Equal(tokenizer.Tokens, WordLevelTokenizer.Build(["c a B", "b a a c"]).Tokens);
    }

    [Fact]
    public void Save_and_load_round_trip()
    {
        var tokenizer = WordLevelTokenizer.Build(Corpus);
        string path = Path.Combine(Path.GetTempPath(), $"wl-{Guid.NewGuid():N}", "tokenizer.json");
        try
        {
            tokenizer.Save(path);
            var loaded = WordLevelTokenizer.Load(path);
            Assert.Equal(tokenizer.Tokens, loaded.Tokens);
            Assert.Equal(tokenizer.Encode(Corpus[1]), loaded.Encode(Corpus[1]));
            File.WriteAllText(path, "{\"type\":\"something-else\",\"version\":1,\"tokens\":[]}");
            Assert.Throws<FormatException>(() => WordLevelTokenizer.Load(path));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
