namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// Hand-traced expectations for the mteval-v13a rules: (1) space around
/// <c>{|}~[\]^_`!"#$%&amp;()*+:;&lt;=&gt;?@/</c>; (2) <c>X.</c>/<c>X,</c> with X not a digit → <c>X . </c>;
/// (3) <c>.Y</c>/<c>,Y</c> with Y not a digit → <c> . Y</c>; (4) <c>D-</c> with D a digit → <c>D - </c>;
/// then whitespace collapsed. Each regex pass scans left to right without overlapping matches.
/// </summary>
public sealed class Tokenizer13aTests
{
    [Theory]
    // "!" is a rule-1 symbol; "o," is rule 2.
    [InlineData("Hello, world!", "Hello , world !")]
    // Period and comma between digits survive rules 2 and 3; the final "." follows "s" (rule 2).
    [InlineData("It costs 1,000.50 dollars.", "It costs 1,000.50 dollars .")]
    [InlineData("3.14", "3.14")]
    // "a." matches rule 2 even though a digit follows.
    [InlineData("a.1", "a . 1")]
    // Rule 2 does not fire on "1." (digit before); rule 3 fires on ".a".
    [InlineData("1.a", "1 . a")]
    [InlineData("1,b", "1 , b")]
    [InlineData("a,b", "a , b")]
    [InlineData("1,2", "1,2")]
    // Rule 2 consumes "e." then "g." separately.
    [InlineData("e.g.", "e . g .")]
    [InlineData("U.S.A.", "U . S . A .")]
    // Rule 2 matches "a." and resumes at the second ".", which rule 3 then separates.
    [InlineData("a..", "a . .")]
    // Rule 4: a dash after a digit is split; other dashes are kept inside the word.
    [InlineData("5-6", "5 - 6")]
    [InlineData("1-2-3", "1 - 2 - 3")]
    [InlineData("x-y", "x-y")]
    [InlineData("-5", "-5")]
    [InlineData("family-friendly", "family-friendly")]
    // "$" and "%" are rule-1 symbols; "10.5" keeps its period.
    [InlineData("$5 or 10.5%", "$ 5 or 10.5 %")]
    // The apostrophe is not in the rule-1 set.
    [InlineData("it's", "it's")]
    [InlineData("(a)[b]{c}", "( a ) [ b ] { c }")]
    [InlineData("a/b\\c", "a / b \\ c")]
    // HTML entities are unescaped first, then the symbols are split off.
    [InlineData("&quot;Hi&quot; &amp; &lt;b&gt;", "\" Hi \" & < b >")]
    // Only one level of unescaping: "&amp;quot;" becomes "&quot;", whose "&" and ";" are symbols.
    [InlineData("&amp;quot;", "& quot ;")]
    [InlineData("AT&T", "AT & T")]
    // <skipped> is removed, "-\n" joins, "\n" becomes a space.
    [InlineData("<skipped>word", "word")]
    [InlineData("hyphen-\nated", "hyphenated")]
    [InlineData("two\nlines", "two lines")]
    // Whitespace is collapsed and stripped, including Python-only whitespace such as U+001C and U+00A0.
    [InlineData("  a \t b\u00A0c\u001Cd  ", "a b c d")]
    [InlineData("", "")]
    [InlineData("   ", "")]
    // Non-ASCII symbols are not split.
    [InlineData("less than £20.", "less than £20 .")]
    public void Tokenizes_like_mteval_v13a(string input, string expected) =>
        Assert.Equal(expected, Tokenizer13a.Tokenize(input));

    [Fact]
    public void Rule_one_symbols_are_each_separated()
    {
        const string symbols = "{|}~[\\]^_`!\"#$%&()*+:;<=>?@/";
        Assert.Equal(string.Join(' ', symbols.ToCharArray()), Tokenizer13a.Tokenize(symbols));
    }

    [Fact]
    public void Apostrophe_hyphen_period_and_comma_are_not_rule_one_symbols()
    {
        // Between digits none of them is split by any rule: "1'2" and "1.2" and "1,2" stay; "1-2" splits (rule 4).
        Assert.Equal("1'2 1.2 1,2 1 - 2", Tokenizer13a.Tokenize("1'2 1.2 1,2 1-2"));
    }
}

/// <summary>
/// The v13a passes are written as character scans for speed; the regexes sacreBLEU uses (kept in
/// <c>Tokenizer13a.ApplyV13aPassesWithRegex</c>, transcribed from <c>tokenizer_13a.py</c>) are the definition they
/// must equal, on every line of the vectors and on strings built to stress adjacent matches.
/// </summary>
public sealed class Tokenizer13aScanTests
{
    [Fact]
    public void Character_scans_equal_the_regex_passes()
    {
        var v = E2eDev200Vectors.Value;
        var lines = v.Hypotheses.Concat(v.Streams.SelectMany(s => s)).Concat(
        [
            "a..b,,c 1.,2 ,.3 3-4-5 a-1 1-a --1 1-- .,., 9.9.9 ,1, .a. a.\n,b 1,000.50 $5.- x,.-y",
            "...", ",,,", "1..2", "a,1", "1,a", "-1-", "\u00e9.\u00e9", "\ud83d\ude00,\ud83d\ude00", "",
        ]);
        foreach (var line in lines)
        {
            var padded = " " + line + " ";
            Assert.Equal(Tokenizer13a.ApplyV13aPassesWithRegex(padded), Tokenizer13a.ApplyV13aPasses(padded));
        }
    }
}

