namespace Orchestrator.Evaluation.Tests;

/// <summary>Hand-derived BLEU cases; every expected number is worked out in the comments.</summary>
public sealed class SacreBleuTests
{
    private const double Tolerance = 1e-9;

    private static IReadOnlyList<IReadOnlyList<string>> Streams(params string[][] streams) => streams;

    [Fact]
    public void Perfect_match_scores_100()
    {
        // Every n-gram matches: precisions 100, BP 1, score 100.
        var s = SacreBleu.Corpus(["the cat sat on the mat"], Streams(["the cat sat on the mat"]));
        Assert.Equal(100.0, s.Score, Tolerance);
        Assert.Equal([6, 5, 4, 3], s.Counts);
        Assert.Equal([6, 5, 4, 3], s.Totals);
        Assert.Equal("BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)", s.Format());
        Assert.Equal("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", s.Signature);
    }

    [Fact]
    public void Exp_smoothing_halves_for_each_order_without_matches()
    {
        // hyp a b c d e / ref a b x y z (5 tokens each, BP = 1).
        // 1-grams: a, b match → 2/5 = 40.  2-grams: "a b" → 1/4 = 25.
        // 3-grams: 0 of 3 → first zero order, k = 1 → 100 / (2·3).  4-grams: 0 of 2 → k = 2 → 100 / (4·2) = 12.5.
        var s = SacreBleu.Corpus(["a b c d e"], Streams(["a b x y z"]));
        Assert.Equal([2, 1, 0, 0], s.Counts);
        Assert.Equal([5, 4, 3, 2], s.Totals);
        Assert.Equal(40.0, s.Precisions[0], Tolerance);
        Assert.Equal(25.0, s.Precisions[1], Tolerance);
        Assert.Equal(100.0 / 6, s.Precisions[2], Tolerance);
        Assert.Equal(12.5, s.Precisions[3], Tolerance);
        Assert.Equal(1.0, s.BrevityPenalty);
        // Geometric mean of the four precisions.
        Assert.Equal(Math.Pow(40.0 * 25.0 * (100.0 / 6) * 12.5, 0.25), s.Score, Tolerance);
    }

    [Fact]
    public void Exp_smoothing_keeps_doubling_across_consecutive_zero_orders()
    {
        // hyp a b c d / ref a x b y: unigrams a, b → 2/4 = 50; no bigram/trigram/4-gram matches.
        // Zero orders get 100/(2·3), 100/(4·2), 100/(8·1).
        var s = SacreBleu.Corpus(["a b c d"], Streams(["a x b y"]));
        Assert.Equal([2, 0, 0, 0], s.Counts);
        Assert.Equal(new[] { 50.0, 100.0 / 6, 12.5, 12.5 }, s.Precisions.ToArray());
        Assert.Equal(Math.Pow(50.0 * (100.0 / 6) * 12.5 * 12.5, 0.25), s.Score, Tolerance);
    }

    [Fact]
    public void No_matches_at_all_scores_zero()
    {
        // sacreBLEU stops early when no n-gram matches: score 0 and all precisions 0.
        var s = SacreBleu.Corpus(["a b c d"], Streams(["w x y z"]));
        Assert.Equal(0.0, s.Score);
        Assert.Equal(new double[4], s.Precisions.ToArray());
        Assert.Equal("BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)", s.Format());
    }

    [Fact]
    public void Empty_hypothesis_scores_zero_with_zero_brevity_penalty()
    {
        // sys_len 0 < ref_len 3 → BP is defined as 0; no matches → score 0; ratio 0/3.
        var s = SacreBleu.Corpus([""], Streams(["a b c"]));
        Assert.Equal(0.0, s.Score);
        Assert.Equal(0.0, s.BrevityPenalty);
        Assert.Equal(0, s.SysLen);
        Assert.Equal(3, s.RefLen);
        Assert.Equal([0, 0, 0, 0], s.Totals);
        Assert.Equal("BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 3)", s.Format());

        Assert.Equal(0.0, SacreBleu.Sentence("", ["a b c"]).Score);
    }

    [Fact]
    public void Empty_hypothesis_among_others_only_adds_reference_length()
    {
        // Segment 1 is a perfect 4-token match; segment 2 is empty against a 4-token reference.
        // sys_len 4, ref_len 8 → BP = exp(1 − 8/4) = e^−1; all precisions 100 → score 100·e^−1.
        var s = SacreBleu.Corpus(["a b c d", ""], Streams(["a b c d", "e f g h"]));
        Assert.Equal(Math.Exp(-1), s.BrevityPenalty, Tolerance);
        Assert.Equal(100 * Math.Exp(-1), s.Score, Tolerance);
    }

    [Fact]
    public void Brevity_penalty_for_a_short_hypothesis()
    {
        // hyp a b c d (4) vs ref a b c d e f g h (8): precisions all 100, BP = exp(1 − 8/4) = e^−1.
        var s = SacreBleu.Corpus(["a b c d"], Streams(["a b c d e f g h"]));
        Assert.Equal(Math.Exp(-1), s.BrevityPenalty, Tolerance);
        Assert.Equal(100 * Math.Exp(-1), s.Score, Tolerance);
        // 100·e^−1 = 36.7879…; BP 0.3679 → "0.368"; ratio 4/8.
        Assert.Equal("BLEU = 36.79 100.0/100.0/100.0/100.0 (BP = 0.368 ratio = 0.500 hyp_len = 4 ref_len = 8)", s.Format());
    }

    [Fact]
    public void No_brevity_penalty_when_the_hypothesis_is_longer()
    {
        // hyp 5 tokens vs ref 4: BP = 1 (only shorter hypotheses are penalised).
        var s = SacreBleu.Corpus(["a b c d e"], Streams(["a b c d"]));
        Assert.Equal(1.0, s.BrevityPenalty);
        Assert.Equal(5, s.SysLen);
        Assert.Equal(4, s.RefLen);
    }

    [Fact]
    public void Order_without_any_hypothesis_ngrams_zeroes_corpus_bleu_but_not_sentence_bleu()
    {
        // hyp a b c (3 tokens) has no 4-grams: corpus BLEU (effective order off) takes log(0) → score 0.
        var corpus = SacreBleu.Corpus(["a b c"], Streams(["a b c d e f"]));
        Assert.Equal(0.0, corpus.Score);
        Assert.Equal(new[] { 100.0, 100.0, 100.0, 0.0 }, corpus.Precisions.ToArray());
        // sentence_bleu uses effective order: mean over the 3 available orders → 100·BP = 100·exp(1 − 6/3).
        var sentence = SacreBleu.Sentence("a b c", ["a b c d e f"]);
        Assert.Equal(100 * Math.Exp(-1), sentence.Score, Tolerance);
        Assert.Equal("nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0", sentence.Signature);
    }

    [Fact]
    public void Closest_reference_length_prefers_the_shorter_one_on_ties()
    {
        // hyp 4 tokens; refs of 3 and 5 tokens are both 1 away → the shorter (3) is used.
        var s = SacreBleu.Corpus(["a b c d"], Streams(["a b c d e"], ["a b c"]));
        Assert.Equal(3, s.RefLen);
        Assert.Equal(1.0, s.BrevityPenalty);
        Assert.Equal("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", s.Signature);
    }

    [Fact]
    public void Multiple_references_clip_each_ngram_by_its_maximum_reference_count()
    {
        // hyp "the the the the": "the" occurs at most 2 times in any one reference → 1-gram matches 2/4.
        var s = SacreBleu.Corpus(["the the the the"], Streams(["the cat the"], ["the dog"]));
        Assert.Equal(2, s.Counts[0]);
        Assert.Equal(4, s.Totals[0]);
    }

    [Fact]
    public void Empty_reference_in_a_stream_is_padding_and_is_dropped()
    {
        // Segment 0 refs: "a b c d e f" (6 tokens) and "" (padding). Segment 1 refs: "x y" and "x y z".
        // Dropped: segment 0 has 1 ref, segment 1 has 2 → nrefs:var, and the hypothesis "a b" (2 tokens)
        // takes ref length 6; segment 1 "x y" takes 2 → ref_len 8, sys_len 4, BP = exp(1 − 8/4).
        IReadOnlyList<string> hyps = ["a b", "x y"];
        var streams = Streams(["a b c d e f", "x y"], ["", "x y z"]);
        var dropped = SacreBleu.Corpus(hyps, streams);
        Assert.Equal(8, dropped.RefLen);
        Assert.Equal(Math.Exp(-1), dropped.BrevityPenalty, Tolerance);
        Assert.Equal("nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", dropped.Signature);

        // Kept (what sacreBLEU does with a literal ""): segment 0's closest length is 0 (|2−0| < |2−6|),
        // so ref_len = 0 + 2 = 2 ≤ sys_len 4 → BP 1, and every segment has 2 refs → nrefs:2.
        var kept = SacreBleu.Corpus(hyps, streams, SacreBleuOptions.Default with { DropEmptyReferences = false });
        Assert.Equal(2, kept.RefLen);
        Assert.Equal(1.0, kept.BrevityPenalty);
        Assert.Equal("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", kept.Signature);

        // Groups give the same result as padded streams.
        var fromGroups = SacreBleu.CorpusFromGroups(hyps, [["a b c d e f"], ["x y", "x y z"]]);
        Assert.Equal(dropped, fromGroups with { Counts = dropped.Counts, Totals = dropped.Totals, Precisions = dropped.Precisions });
        Assert.Equal(dropped.Counts, fromGroups.Counts);
        Assert.Equal(dropped.Totals, fromGroups.Totals);
    }

    [Fact]
    public void A_segment_without_any_reference_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => SacreBleu.Corpus(["a"], Streams([""])));
        Assert.Throws<ArgumentException>(() => SacreBleu.CorpusFromGroups(["a"], [[]]));
    }

    [Fact]
    public void Streams_must_be_as_long_as_the_hypotheses()
    {
        Assert.Throws<ArgumentException>(() => SacreBleu.Corpus(["a", "b"], Streams(["a"])));
    }

    [Fact]
    public void Tokenisation_applies_before_matching()
    {
        // "mat." vs "mat ." are the same after 13a tokenisation → perfect match.
        var s = SacreBleu.Corpus(["The cat sat on the mat."], Streams(["The cat sat on the mat ."]));
        Assert.Equal(100.0, s.Score, Tolerance);
        // Mixed case by default: "the" does not match "The".
        var cased = SacreBleu.Corpus(["the cat"], Streams(["The cat"]));
        Assert.Equal(1, cased.Counts[0]);
        var lower = SacreBleu.Corpus(["the cat"], Streams(["The cat"]), SacreBleuOptions.Default with { Lowercase = true });
        Assert.Equal(2, lower.Counts[0]);
        Assert.StartsWith("nrefs:1|case:lc|", lower.Signature, StringComparison.Ordinal);
    }

    [Fact]
    public void Signature_reflects_the_settings()
    {
        Assert.Equal("nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", SacreBleu.Signature(-1, SacreBleuOptions.Default));
        Assert.Equal(
            "nrefs:3|case:lc|eff:yes|tok:none|smooth:floor[0.10]|version:2.6.0",
            SacreBleu.Signature(3, new SacreBleuOptions { Lowercase = true, EffectiveOrder = true, Tokenization = BleuTokenization.None, Smoothing = BleuSmoothing.Floor }));
        Assert.Equal("nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[1.00]|version:2.6.0", SacreBleu.Signature(1, SacreBleuOptions.Default with { Smoothing = BleuSmoothing.AddK }));
    }

    [Theory]
    // Python's format() rounds the exact binary value half to even: 0.125 and 0.375 are exact ties.
    [InlineData(0.125, 2, "0.12")]
    [InlineData(0.375, 2, "0.38")]
    [InlineData(2.5, 0, "2")]
    [InlineData(3.5, 0, "4")]
    // 1.005 is stored as 1.00499999999999989…, so it rounds down.
    [InlineData(1.005, 2, "1.00")]
    [InlineData(58.80716760079973, 2, "58.81")]
    [InlineData(87.72789649088413, 1, "87.7")]
    [InlineData(0.0, 3, "0.000")]
    [InlineData(100.0, 2, "100.00")]
    [InlineData(0.0004, 3, "0.000")]
    [InlineData(-0.001, 2, "-0.00")]
    public void Formatting_rounds_like_python(double value, int decimals, string expected) =>
        Assert.Equal(expected, PythonText.FormatFixed(value, decimals));
}
