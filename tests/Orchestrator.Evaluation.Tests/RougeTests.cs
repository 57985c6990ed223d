namespace Orchestrator.Evaluation.Tests;

/// <summary>Hand-derived ROUGE cases (rouge_score semantics).</summary>
public sealed class RougeTests
{
    private const double Tolerance = 1e-12;

    private static void AssertScore(double p, double r, RougeScore actual)
    {
        Assert.Equal(p, actual.Precision, Tolerance);
        Assert.Equal(r, actual.Recall, Tolerance);
        Assert.Equal(p + r > 0 ? 2 * p * r / (p + r) : 0.0, actual.FMeasure, Tolerance);
    }

    [Fact]
    public void Tokenizer_lowercases_and_splits_on_non_alphanumerics()
    {
        var scorer = new RougeScorer();
        Assert.Equal(["the", "quick", "brown", "fox", "s", "2nd", "caf"], scorer.Tokenize("The quick-brown FOX's 2nd café!"));
        Assert.Empty(scorer.Tokenize(" ... "));
    }

    [Fact]
    public void Stemmer_only_touches_tokens_longer_than_three_characters()
    {
        var scorer = new RougeScorer(useStemmer: true);
        // "was" (3 letters) is kept although Porter would give "wa"; "running" → "run", "dies" → "die".
        Assert.Equal(["was", "run", "die", "cat"], scorer.Tokenize("was running dies cats"));
        Assert.Equal("wa", new PorterStemmer().Stem("was"));
    }

    [Fact]
    public void Rouge_n_and_l_on_a_small_example()
    {
        // target: the cat sat; prediction: the cat ran.
        // ROUGE-1: 2 of 3 unigrams overlap both ways. ROUGE-2: "the cat" is 1 of 2 bigrams.
        // ROUGE-L: LCS "the cat" = 2 → 2/3.
        var s = new RougeScorer().Score("the cat sat", "the cat ran");
        AssertScore(2.0 / 3, 2.0 / 3, s.Rouge1);
        AssertScore(0.5, 0.5, s.Rouge2);
        AssertScore(2.0 / 3, 2.0 / 3, s.RougeL);
        AssertScore(2.0 / 3, 2.0 / 3, s.RougeLsum);
    }

    [Fact]
    public void Precision_and_recall_use_prediction_and_target_lengths()
    {
        // target a b c d (4), prediction a b (2): unigrams 2 overlap → P = 2/2, R = 2/4; LCS = 2 likewise.
        var s = new RougeScorer().Score("a b c d", "a b");
        AssertScore(1.0, 0.5, s.Rouge1);
        // Bigrams: "a b" matches; prediction has 1 bigram, target 3 → P = 1, R = 1/3.
        AssertScore(1.0, 1.0 / 3, s.Rouge2);
        AssertScore(1.0, 0.5, s.RougeL);
    }

    [Fact]
    public void Empty_prediction_scores_zero()
    {
        var s = new RougeScorer().Score("a b c", "");
        foreach (var name in RougeScores.MetricNames)
        {
            Assert.Equal(new RougeScore(0, 0, 0), s[name]);
        }
    }

    [Fact]
    public void Rouge_lsum_uses_summary_level_lcs_over_lines()
    {
        // target lines [a b] [c d]; prediction one line [c d a b].
        // Lsum: line "a b" has LCS "a b" with the prediction, line "c d" has "c d" → 4 hits; P = 4/4, R = 4/4.
        // L (flat): LCS([a b c d], [c d a b]) = 2 → 0.5.
        var s = new RougeScorer().Score("a b\nc d", "c d a b");
        AssertScore(1.0, 1.0, s.RougeLsum);
        AssertScore(0.5, 0.5, s.RougeL);
    }

    [Fact]
    public void Rouge_lsum_does_not_count_a_token_twice()
    {
        // target lines [a] [a], prediction [a]: the first line takes the only predicted "a"; the second
        // finds no unused "a" → hits 1, P = 1/1, R = 1/2.
        var s = new RougeScorer().Score("a\na", "a");
        AssertScore(1.0, 0.5, s.RougeLsum);
    }

    [Fact]
    public void Score_multi_takes_the_best_reference_per_metric_and_the_first_on_ties()
    {
        // Against "the cat sat on the mat": ROUGE-1 P = 2/2, R = 2/6 → F = 0.5; ROUGE-2 "the cat" → P = 1, R = 1/5.
        // Against "a cat": ROUGE-1 P = 1/2, R = 1/2 → F = 0.5 (a tie); ROUGE-2 0.
        var scorer = new RougeScorer();
        var s = scorer.ScoreMulti(["the cat sat on the mat", "a cat"], "the cat");
        AssertScore(1.0, 1.0 / 3, s.Rouge1);
        AssertScore(1.0, 0.2, s.Rouge2);

        var reversed = scorer.ScoreMulti(["a cat", "the cat sat on the mat"], "the cat");
        AssertScore(0.5, 0.5, reversed.Rouge1);
        AssertScore(1.0, 0.2, reversed.Rouge2);
    }

    [Fact]
    public void Corpus_mean_averages_precision_recall_and_f_over_segments()
    {
        // Segment 1: identical → 1/1/1. Segment 2: target "a b c d", prediction "a b" → ROUGE-1 P 1, R 0.5, F 2/3.
        var mean = Rouge.CorpusMean(["x y", "a b"], [["x y"], ["a b c d"]]);
        Assert.Equal(1.0, mean.Rouge1.Precision, Tolerance);
        Assert.Equal(0.75, mean.Rouge1.Recall, Tolerance);
        Assert.Equal((1.0 + 2.0 / 3) / 2, mean.Rouge1.FMeasure, Tolerance);
    }
}
