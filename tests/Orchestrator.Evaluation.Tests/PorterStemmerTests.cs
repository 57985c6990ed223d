namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// NLTK PorterStemmer (NLTK_EXTENSIONS mode) behaviour, with the rule that produces each result.
/// </summary>
public sealed class PorterStemmerTests
{
    private readonly PorterStemmer _stemmer = new();

    [Theory]
    [InlineData("caresses", "caress")] // 1a: sses → ss
    [InlineData("ponies", "poni")] // 1a: ies → i
    [InlineData("flies", "fli")] // 1a: ies → i (five letters)
    [InlineData("dies", "die")] // NLTK: four-letter -ies → ie
    [InlineData("cats", "cat")] // 1a: s →
    [InlineData("caress", "caress")] // 1a: ss stays
    [InlineData("died", "die")] // NLTK: four-letter -ied → ie
    [InlineData("spied", "spi")] // NLTK: -ied → i
    [InlineData("feed", "feed")] // 1b: eed needs m > 0 on "f"
    [InlineData("agreed", "agre")] // 1b: eed → ee ("agree"), then 5a drops e (m("agr") = 1, not *o)
    [InlineData("hopping", "hop")] // 1b: ing, then double consonant undoubled
    [InlineData("falling", "fall")] // 1b: ing, double l kept
    [InlineData("filing", "file")] // 1b: ing, m = 1 and cvc → add e
    [InlineData("happy", "happi")] // 1c (NLTK): y after a consonant → i
    [InlineData("enjoy", "enjoy")] // 1c: y after a vowel stays
    [InlineData("sky", "sky")] // irregular form
    [InlineData("dying", "die")] // irregular form
    [InlineData("news", "news")] // irregular form
    [InlineData("relational", "relat")] // 2: ational → ate, then 4: ate removed (m > 1)
    [InlineData("conditional", "condit")] // 2: tional → tion, then 4: ion after t
    [InlineData("generously", "gener")] // 2: ousli → ous, 4: ous
    [InlineData("running", "run")]
    [InlineData("controlling", "control")] // 1b undouble... then 5b: ll → l
    [InlineData("archaeology", "archaeolog")] // 1c y → i, 2: logi → log
    [InlineData("is", "is")] // ≤ 2 letters untouched
    public void Stems_like_nltk(string word, string expected) => Assert.Equal(expected, _stemmer.Stem(word));
}
