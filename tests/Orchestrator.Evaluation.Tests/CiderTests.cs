namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// CIDEr-D against pycocoevalcap's <c>cider/cider_scorer.py</c> as copied in tuetschek/e2e-metrics (1b9c4d8):
/// <c>CiderScorer(n=4, sigma=6.0)</c>, one <c>+= (hypothesis, references)</c> per segment, <c>compute_score()</c>.
/// numpy is not installed here, so that file ran with a small pure-Python stand-in for the five numpy calls it
/// makes (log, sqrt, e, array addition, mean). Inputs were the raw strings split on whitespace, which is
/// <see cref="CiderTokenization.Whitespace"/>; the E2E scripts first run CoreNLP's PTB tokenizer, which
/// <see cref="CocoTokenizer"/> only approximates, so that step is tested separately.
/// </summary>
public sealed class CiderTests
{
    private const double Tolerance = 1e-9;

    private static E2eDev200Vectors V => E2eDev200Vectors.Value;

    [Fact]
    public void Cider_d_on_the_vectors()
    {
        // compute_score() → 1.2869143378100216.
        Assert.Equal(1.2869143378100216, CiderD.Corpus(V.Hypotheses, V.GroupsView, CiderTokenization.Whitespace).Score, Tolerance);
    }

    [Fact]
    public void Cider_d_on_lower_cased_13a_tokens_of_the_vectors()
    {
        // The same scorer on lower-cased, mteval-13a-tokenised text: 1.830232105128281; segments 1 and 2:
        // 2.287273923124355 and 2.686715523050902.
        var hyps = V.Hypotheses.Select(h => Tokenizer13a.Tokenize(h.ToLowerInvariant())).ToList();
        var refs = V.Groups.Select(g => (IReadOnlyList<string>)g.Select(r => Tokenizer13a.Tokenize(r.ToLowerInvariant())).ToList()).ToList();
        var (score, segments) = CiderD.Corpus(hyps, refs, CiderTokenization.Whitespace);
        Assert.Equal(1.830232105128281, score, Tolerance);
        Assert.Equal(2.287273923124355, segments[0], Tolerance);
        Assert.Equal(2.686715523050902, segments[1], Tolerance);
    }

    [Fact]
    public void Edge_cases_match_pycocoevalcap()
    {
        // EdgeCorpus: 2.5711851011368885; segments [0.0, 0.0, 1.168957683453341, 6.4991870592552425, 5.18778076297586].
        double[] expected = [0.0, 0.0, 1.168957683453341, 6.4991870592552425, 5.18778076297586];
        var (score, segments) = CiderD.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.References, CiderTokenization.Whitespace);
        Assert.Equal(2.5711851011368885, score, Tolerance);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], segments[i], Tolerance);
        }

        Assert.Equal(2.5711851011368885, CiderD.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.PaddedReferences, CiderTokenization.Whitespace).Score, Tolerance);
    }

    [Fact]
    public void Hand_computed_scores()
    {
        // Two segments with disjoint words, each hypothesis equal to its only reference. N = 2, every n-gram has
        // document frequency 1, so every weight is tf·(ln 2 − ln 1): the vectors are equal, each order with n-grams
        // has cosine 1 (orders without n-grams give 0), the bigram-count "lengths" are equal (no penalty).
        // 2 words: orders 1 and 2 → mean (1+1+0+0)/4 · 10 = 5. 4 words: all four orders → 10.
        Assert.Equal(5.0, CiderD.Corpus(["a b", "c d"], [["a b"], ["c d"]], CiderTokenization.Whitespace).Score, 1e-12);
        Assert.Equal(10.0, CiderD.Corpus(["a b c d", "e f g h"], [["a b c d"], ["e f g h"]], CiderTokenization.Whitespace).Score, 1e-12);

        // One segment: ref_len = ln 1 = 0, so every weight is 0 and CIDEr-D is 0 (a property of the corpus-level idf).
        Assert.Equal(0.0, CiderD.Corpus(["a b c d"], [["a b c d"]], CiderTokenization.Whitespace).Score);
    }

    [Theory]
    [InlineData("The Eagle is a pub near Caf\u00e9 Rouge, isn't it?", "the eagle is a pub near caf\u00e9 rouge is n't it")]
    [InlineData("It costs \u00a320-25.", "it costs \u00a3 20-25")]
    [InlineData("A family-friendly (cheap) and \"nice\" place", "a family-friendly cheap and nice place")]
    [InlineData("Mr. Smith's pub in the U.S. cannot close", "mr. smith 's pub in the u.s. can not close")]
    [InlineData("1,000 people: 3.5 stars; ok! Really...", "1,000 people 3.5 stars ok really")]
    [InlineData("\u201cThe Eagle\u201d \u2013 near the river.", "the eagle near the river")]
    [InlineData("The Adams' pub - it's 'great'", "the adams pub it 's great")]
    [InlineData("", "")]
    public void Coco_tokenizer_splits_like_ptb_and_drops_punctuation(string input, string expected) =>
        Assert.Equal(expected, string.Join(' ', CocoTokenizer.Tokenize(input)));

    [Fact]
    public void Segments_without_references_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => CiderD.Corpus(["a"], [[""]]));
        Assert.Throws<ArgumentException>(() => CiderD.Corpus(["a", "b"], [["a"]]));
    }
}
