namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// NIST against the two implementations in tuetschek/e2e-metrics 1b9c4d8. The Perl numbers come from
/// <c>mteval/mteval-v13a-sig.pl</c> run on the SGML files <c>measure_scores.py</c>'s <c>create_mteval_file</c> writes
/// (with only its final <c>printf</c> widened to <c>%.17g</c>); the Python numbers from <c>metrics/pymteval.py</c>
/// <c>NISTScore</c>, one <c>append</c> per segment with that segment's non-empty references.
/// </summary>
public sealed class NistTests
{
    private const double Tolerance = 1e-9;

    private static E2eDev200Vectors V => E2eDev200Vectors.Value;

    [Fact]
    public void Mteval_perl_nist_on_the_vectors()
    {
        // mteval-v13a-sig.pl: "NIST score = 8.5027658309299969" (printed as 8.5028 by default).
        Assert.Equal(8.5027658309299969, Nist.Corpus(V.Hypotheses, V.GroupsView, NistVariant.MtevalPerl), Tolerance);
    }

    [Fact]
    public void Pymteval_nist_on_the_vectors()
    {
        // pymteval NISTScore().score() = 8.49999227896043 (differs from the Perl for a varying number of references).
        Assert.Equal(8.49999227896043, Nist.Corpus(V.Hypotheses, V.GroupsView, NistVariant.PyMteval), Tolerance);
    }

    [Fact]
    public void Edge_cases_match_both_implementations()
    {
        // Empty and one-word hypotheses, Unicode punctuation, a 540-word line, an exact match (EdgeCorpus):
        // Perl 4.337050073677732, pymteval 4.333509313752554.
        Assert.Equal(4.337050073677732, Nist.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.References, NistVariant.MtevalPerl), Tolerance);
        Assert.Equal(4.333509313752554, Nist.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.References, NistVariant.PyMteval), Tolerance);
    }

    [Fact]
    public void Empty_reference_lines_are_padding()
    {
        Assert.Equal(4.337050073677732, Nist.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.PaddedReferences), Tolerance);
    }

    [Fact]
    public void Hand_computed_nist_with_a_length_penalty()
    {
        // hyp "a b c d e", ref "a b c d e f". Each reference unigram occurs once among 6 words: info = log2(6/1);
        // every longer n-gram has info log2(1/1) = 0. Σn info/ngrams = 5·log2 6 / 5 = log2 6. Length ratio 5/6:
        // penalty exp(−β·ln²(5/6)), β = −ln 0.5 / ln² 1.5. Both implementations agree on a single reference.
        var beta = -Math.Log(0.5) / (Math.Log(1.5) * Math.Log(1.5));
        var expected = Math.Log2(6) * Math.Exp(-beta * Math.Log(5.0 / 6) * Math.Log(5.0 / 6));
        Assert.Equal(expected, Nist.Corpus(["a b c d e"], [["a b c d e f"]], NistVariant.MtevalPerl), 1e-12);
        Assert.Equal(expected, Nist.Corpus(["a b c d e"], [["a b c d e f"]], NistVariant.PyMteval), 1e-12);
    }

    [Fact]
    public void A_hypothesis_shorter_than_the_ngram_order_counts_no_higher_ngrams()
    {
        // Perl: hyp "a b" vs ref "a b c": unigram info log2 3 each, bigram "a b" info log2(1/1) = 0, higher orders
        // have no n-grams (max(count, 1) = 1 in the denominator). Σ = 2·log2 3 / 2. Ratio 2/3 = 1/1.5 gives the
        // penalty 0.5 by construction of β.
        Assert.Equal(Math.Log2(3) * 0.5, Nist.Corpus(["a b"], [["a b c"]], NistVariant.MtevalPerl), 1e-12);
    }

    [Fact]
    public void Case_and_punctuation_follow_mteval_tokenisation()
    {
        // ASCII lower-casing and 13a punctuation splitting: "The PUB." ≡ "the pub ." → a perfect match, penalty 1.
        // Unigrams the, pub, . each once among 3 words: info log2 3 → Σ = log2 3 (+ 0 for the bigrams and trigram).
        Assert.Equal(Math.Log2(3), Nist.Corpus(["The PUB."], [["the pub ."]], NistVariant.MtevalPerl), 1e-12);
    }

    [Fact]
    public void Segments_without_references_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => Nist.Corpus(["a"], [["", ""]]));
        Assert.Throws<ArgumentException>(() => Nist.Corpus(["a", "b"], [["a"]]));
    }
}
