namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// TER against tercom built from jhclark/tercom (e413d07, the LGPL release of Snover's tercom 0.7.25 code):
/// <c>java ter.TER -r refs -h hyp -o ter</c> with tercom's "text (id)" lines, several reference lines per id,
/// default settings (case-insensitive, no normalisation, beam 20, shift distance 50); <c>-N</c> where noted.
/// </summary>
public sealed class TerTests
{
    private const double Tolerance = 1e-9;

    private static E2eDev200Vectors V => E2eDev200Vectors.Value;

    [Fact]
    public void Ter_on_the_vectors()
    {
        // "Total TER: 0.454279820097108 (2120.0/4666.72721572097)"; first segments 7.0/13.6, 6.0/12.2, 4.0/10.125,
        // 8.0/11.9, 3.0/10.694444444444445 (edits / average reference length). All 200 segments were compared.
        var ter = Ter.Corpus(V.Hypotheses, V.GroupsView);
        Assert.Equal(0.454279820097108, ter.Score, Tolerance);
        Assert.Equal(2120.0, ter.Edits);
        Assert.Equal(4666.72721572097, ter.ReferenceWords, Tolerance);
        (double Edits, double Words)[] segments = [(7, 13.6), (6, 12.2), (4, 10.125), (8, 11.9), (3, 10.694444444444445)];
        for (var i = 0; i < segments.Length; i++)
        {
            Assert.Equal(segments[i].Edits, ter.Segments[i].Edits);
            Assert.Equal(segments[i].Words, ter.Segments[i].ReferenceWords, Tolerance);
        }
    }

    [Fact]
    public void Edge_cases_match_tercom()
    {
        // EdgeCorpus: "Total TER: 0.043668122270742356 (25.0/572.5)"; per segment 8/8.5 (empty hypothesis: every
        // word of the best reference deleted), 1/3.5, 5/12.5, 11/540, 0/8.
        var ter = Ter.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.References);
        Assert.Equal(0.043668122270742356, ter.Score, Tolerance);
        Assert.Equal(25.0, ter.Edits);
        Assert.Equal(572.5, ter.ReferenceWords);
        Assert.Equal([8.0, 1, 5, 11, 0], ter.Segments.Select(s => s.Edits));
        Assert.Equal([8.5, 3.5, 12.5, 540, 8], ter.Segments.Select(s => s.ReferenceWords));
        Assert.Equal(0.043668122270742356, Ter.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.PaddedReferences).Score, Tolerance);
    }

    [Fact]
    public void Normalised_edge_cases_match_tercom_with_N()
    {
        // -N: "Total TER: 0.05176876617773943 (30.0/579.5)"; per segment 9/9.5, 1/4.5, 9/15.5, 11/540, 0/10.
        var ter = Ter.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.References, new TerOptions { Normalize = true });
        Assert.Equal(0.05176876617773943, ter.Score, Tolerance);
        Assert.Equal([9.0, 1, 9, 11, 0], ter.Segments.Select(s => s.Edits));
        Assert.Equal([9.5, 4.5, 15.5, 540, 10], ter.Segments.Select(s => s.ReferenceWords));
    }

    [Fact]
    public void Block_shifts_cost_one_edit()
    {
        // Moving "a" to the end, or the block "a b" after "e", is one shift: 1/4 and 1/5. "the cat sat on the mat" vs
        // "the cat sat on a mat": one substitution, 1/6 (the second reference needs more edits; the average length is
        // (6 + 6)/2 = 6). tercom prints 0.25, 0.2, 0.16666666666666666 and "Total TER: 0.2 (3.0/15.0)".
        Assert.Equal(0.25, Ter.Segment("a b c d", ["b c d a"]).Score, 1e-12);
        Assert.Equal(1, Ter.Segment("a b c d", ["b c d a"]).Shifts);
        Assert.Equal(0.2, Ter.Segment("a b c d e", ["c d e a b"]).Score, 1e-12);
        Assert.Equal(1.0 / 6, Ter.Segment("the cat sat on the mat", ["the cat sat on a mat", "on the mat sat the cat"]).Score, 1e-12);
        Assert.Equal(0.2, Ter.Corpus(["a b c d", "a b c d e", "the cat sat on the mat"],
            [["b c d a"], ["c d e a b"], ["the cat sat on a mat", "on the mat sat the cat"]]).Score, 1e-12);
    }

    [Fact]
    public void Case_is_ignored_unless_asked_for()
    {
        Assert.Equal(0.0, Ter.Segment("The Pub", ["the pub"]).Score);
        Assert.Equal(0.5, Ter.Segment("The pub", ["the pub"], new TerOptions { CaseSensitive = true }).Score);
    }

    [Fact]
    public void Empty_strings_follow_tercom()
    {
        // TERnullstr: an empty hypothesis costs every reference word; an empty reference has no words, so any
        // hypothesis word is an insertion and the segment scores 1.
        Assert.Equal(new TerSegment(3, 3, 0), Ter.Segment("", ["a b c"]));
        Assert.Equal(1.0, Ter.Segment("a b", [" "]).Score);
        Assert.Throws<ArgumentException>(() => Ter.Corpus(["a"], [[""]]));
    }
}
