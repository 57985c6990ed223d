using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

public sealed class FormatTests
{
    private static readonly WordLevelTokenizer Tokenizer = TestData.SymbolTokenizer();

    [Fact]
    public void Loss_covers_only_the_target_and_its_final_end_token()
    {
        int A = Id("a"), B = Id("b"), C = Id("c"), D = Id("d"), eot = Tokenizer.EndOfText, ignore = CausalLmFormat.IgnoreIndex;
        var full = Tokenizer.Encode(" a b <|endoftext|> c d <|endoftext|>");
        EncodedExample e = CausalLmFormat.Encode(Tokenizer, "a b", "c d", maxLength: 64);
        Assert.Equal(full, e.InputIds);
        Assert.Equal([A, B, eot, C, D, eot], e.InputIds);
        Assert.Equal([ignore, ignore, ignore, C, D, eot], e.Labels);
        Assert.Equal(3, e.TargetTokens);
    }

    [Fact]
    public void Batches_are_right_padded_with_ignored_labels()
    {
        var examples = new[]
        {
            CausalLmFormat.Encode(Tokenizer, "a b c", "d", 64),
            CausalLmFormat.Encode(Tokenizer, "a", "b c d e", 64),
        };
        TorchRuntime.EnsureAvailable();
        using var batch = CausalLmFormat.Collate(examples, Tokenizer.Pad);
        Assert.Equal([2L, 7], batch.InputIds.shape);
        long[] ids = batch.InputIds.data<long>().ToArray();
        long[] labels = batch.Labels.data<long>().ToArray();
        int pad = Tokenizer.Pad, ignore = CausalLmFormat.IgnoreIndex, eot = Tokenizer.EndOfText;
        Assert.Equal(new long[] { Id("a"), Id("b"), Id("c"), eot, Id("d"), eot, pad }, ids[..7]);
        Assert.Equal(new long[] { ignore, ignore, ignore, ignore, Id("d"), eot, ignore }, labels[..7]);
        Assert.Equal(new long[] { Id("a"), eot, Id("b"), Id("c"), Id("d"), Id("e"), eot }, ids[7..]);
        Assert.Equal(new long[] { ignore, ignore, Id("b"), Id("c"), Id("d"), Id("e"), eot }, labels[7..]);
        Assert.Equal(13, batch.Tokens);
        Assert.Equal(7, batch.TargetTokens);
    }

    [Fact]
    public void Long_sequences_are_truncated_and_a_too_long_source_is_a_clear_error()
    {
        EncodedExample e = CausalLmFormat.Encode(Tokenizer, "a b", "c d e f g", maxLength: 5);
        Assert.Equal(5, e.InputIds.Length);
        Assert.Equal(2, e.TargetTokens);
        var error = Assert.Throws<ArgumentException>(() => CausalLmFormat.Encode(Tokenizer, "a b c d", "e", maxLength: 5));
        Assert.Contains("source needs 5 tokens", error.Message);
        Assert.Contains("5 positions", error.Message);
    }

    private static int Id(string token) => Tokenizer.Encode(token)[0];
}
