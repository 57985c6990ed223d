namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// BLEU and ROUGE on Unicode punctuation and very long lines, with the expected numbers worked out by hand from
/// sacreBLEU's and rouge_score's rules (explained per test).
/// </summary>
public sealed class BleuRougeEdgeCaseTests
{
    [Fact]
    public void Unicode_punctuation_is_not_split_by_13a_but_is_dropped_by_rouge()
    {
        const string hyp = "The caf\u00e9 \u2014 \u201cAromi\u201d \u2014 is cheap.";
        const string reference = "The caf\u00e9 \u201cAromi\u201d is cheap.";

        // 13a only separates ASCII symbols, so "—" and "“Aromi”" stay tokens; the final period is split off.
        // hyp: The café — “Aromi” — is cheap .  (8 tokens)   ref: The café “Aromi” is cheap .  (6 tokens)
        // matches: 1-grams 6/8; 2-grams {The café, is cheap, cheap .} 3/7; 3-grams {is cheap .} 1/6; 4-grams 0/5.
        // exp smoothing gives the zero 4-gram order 100/(2·5); no brevity penalty (8 > 6).
        var bleu = SacreBleu.CorpusFromGroups([hyp], [[reference]]);
        Assert.Equal([6, 3, 1, 0], bleu.Counts);
        Assert.Equal([8, 7, 6, 5], bleu.Totals);
        Assert.Equal(Math.Pow(75.0 * (300.0 / 7) * (100.0 / 6) * 10.0, 0.25), bleu.Score, 1e-9);

        // rouge_score keeps only [a-z0-9] runs: both become "the caf aromi is cheap" (é is a separator), a perfect match.
        var rouge = new RougeScorer().Score(reference, hyp);
        Assert.Equal(1.0, rouge.Rouge1.FMeasure);
        Assert.Equal(1.0, rouge.Rouge2.FMeasure);
        Assert.Equal(1.0, rouge.RougeL.FMeasure);
    }

    [Fact]
    public void A_very_long_line_with_one_word_missing()
    {
        // Reference: 1,000 distinct words w0..w999; hypothesis: the same without w500 (999 words).
        var reference = string.Join(' ', Enumerable.Range(0, 1000).Select(i => $"w{i}"));
        var hyp = string.Join(' ', Enumerable.Range(0, 1000).Where(i => i != 500).Select(i => $"w{i}"));

        // BLEU: every n-gram not spanning the gap matches: 1-grams 999/999, 2-grams 997/998, 3-grams 995/997,
        // 4-grams 993/996; brevity penalty exp(1 − 1000/999).
        var bleu = SacreBleu.CorpusFromGroups([hyp], [[reference]]);
        Assert.Equal([999, 997, 995, 993], bleu.Counts);
        Assert.Equal([999, 998, 997, 996], bleu.Totals);
        var expected = Math.Exp(1 - (1000.0 / 999)) * 100 * Math.Exp((Math.Log(999.0 / 999) + Math.Log(997.0 / 998) + Math.Log(995.0 / 997) + Math.Log(993.0 / 996)) / 4);
        Assert.Equal(expected, bleu.Score, 1e-9);

        // ROUGE: LCS = 999 → P = 1, R = 0.999; ROUGE-2: 997 common bigrams of 998 (hyp) and 999 (ref).
        var rouge = new RougeScorer().Score(reference, hyp);
        Assert.Equal(2 * 1.0 * 0.999 / 1.999, rouge.RougeL.FMeasure, 1e-12);
        Assert.Equal(997.0 / 998, rouge.Rouge2.Precision, 1e-12);
        Assert.Equal(997.0 / 999, rouge.Rouge2.Recall, 1e-12);
    }

    [Fact]
    public void A_hypothesis_of_three_tokens_has_no_4grams()
    {
        // "a pub ." (3 tokens after 13a) vs "a pub ." : 1-3-grams all match; there is no 4-gram, so corpus BLEU
        // (no effective order) is 0 while sentence BLEU (effective order) is 100.
        Assert.Equal(0.0, SacreBleu.CorpusFromGroups(["a pub."], [["a pub."]]).Score);
        Assert.Equal(100.0, SacreBleu.Sentence("a pub.", ["a pub."]).Score, 1e-9);
    }
}
