using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;

namespace Orchestrator.Evaluation;

/// <summary>
/// The mteval-v13a tokenizer as sacreBLEU 2.6.0 implements it (<c>tokenizer_13a.Tokenizer13a</c>,
/// signature <c>13a</c>).
/// </summary>
public static partial class Tokenizer13a
{
    /// <summary>The tokenizer's name in sacreBLEU signatures.</summary>
    public const string Signature = "13a";

    /// <summary>
    /// Tokenizes one line: removes <c>&lt;skipped&gt;</c>, joins <c>-\n</c>, turns newlines into
    /// spaces, unescapes <c>&amp;quot; &amp;amp; &amp;lt; &amp;gt;</c>, then applies the v13a
    /// punctuation rules and normalises whitespace (single spaces, no leading/trailing space).
    /// </summary>
    public static string Tokenize(string line)
    {
        ArgumentNullException.ThrowIfNull(line);

        // Language-independent part.
        line = line.Replace("<skipped>", string.Empty, StringComparison.Ordinal)
            .Replace("-\n", string.Empty, StringComparison.Ordinal)
            .Replace("\n", " ", StringComparison.Ordinal);

        if (line.Contains('&', StringComparison.Ordinal))
        {
            line = line.Replace("&quot;", "\"", StringComparison.Ordinal)
                .Replace("&amp;", "&", StringComparison.Ordinal)
                .Replace("&lt;", "<", StringComparison.Ordinal)
                .Replace("&gt;", ">", StringComparison.Ordinal);
        }

        return ApplyV13aRules(" " + line + " ");
    }

    /// <summary>
    /// The language-dependent v13a regex passes (sacreBLEU's <c>TokenizerRegexp</c>) followed by
    /// Python's <c>' '.join(line.split())</c>.
    /// </summary>
    internal static string ApplyV13aRules(string line) => string.Join(' ', PythonText.SplitWhitespace(ApplyV13aPasses(line)));

    /// <summary>
    /// The four v13a passes before whitespace normalisation. Each of the last three regexes is two single-character
    /// classes, so <c>Regex.Replace</c> amounts to a left-to-right scan that, where the two characters match, writes
    /// the replacement and skips both (matches never overlap); <see cref="ReplacePairs"/> does exactly that without
    /// the regex engine (checked against the regexes by <c>Tokenizer13aTests</c>).
    /// </summary>
    internal static string ApplyV13aPasses(string line)
    {
        line = SeparateSymbols(line);
        line = ReplacePairs(line, PeriodComma, candidateIsSecond: true, static (a, _) => !IsDigit(a), SpaceAfterBoth);
        line = ReplacePairs(line, PeriodComma, candidateIsSecond: false, static (_, b) => !IsDigit(b), SpaceBeforeBoth);
        line = ReplacePairs(line, Dash, candidateIsSecond: true, static (a, _) => IsDigit(a), SpaceAfterBoth);
        return line;
    }

    /// <summary>The regex form of the last three passes (kept as the definition; used by tests).</summary>
    internal static string ApplyV13aPassesWithRegex(string line)
    {
        line = SeparateSymbols(line);
        line = PeriodCommaNotAfterDigit().Replace(line, "${1} ${2} ");
        line = PeriodCommaNotBeforeDigit().Replace(line, " ${1} ${2}");
        line = DashAfterDigit().Replace(line, "${1} ${2} ");
        return line;
    }

    private const int SpaceAfterBoth = 0;  // "$1 $2 "
    private const int SpaceBeforeBoth = 1; // " $1 $2"

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    private static readonly SearchValues<char> PeriodComma = SearchValues.Create(".,");
    private static readonly SearchValues<char> Dash = SearchValues.Create("-");
    private static readonly SearchValues<char> Symbols = SearchValues.Create("{|}~[\\]^_` !\"#$%&()*+:;<=>?@/");

    /// <summary>
    /// A two-character regex pass: one character is from <paramref name="candidates"/> (the second of the pair when
    /// <paramref name="candidateIsSecond"/>), the other must satisfy <paramref name="other"/>. Matches are found left to
    /// right and never overlap, as with <c>Regex.Replace</c>.
    /// </summary>
    private static string ReplacePairs(string line, SearchValues<char> candidates, bool candidateIsSecond, Func<char, char, bool> other, int replacement)
    {
        StringBuilder? sb = null;
        var copied = 0; // characters of line already written to sb
        var resume = 0; // where the regex would resume searching
        var span = line.AsSpan();
        var from = candidateIsSecond ? 1 : 0;
        while (from < span.Length)
        {
            var hit = span[from..].IndexOfAny(candidates);
            if (hit < 0)
            {
                break;
            }

            var p = from + hit;
            var start = candidateIsSecond ? p - 1 : p;
            if (start >= resume && start + 1 < span.Length && other(span[start], span[start + 1]))
            {
                sb ??= new StringBuilder(line.Length + 16);
                sb.Append(span[copied..start]);
                if (replacement == SpaceAfterBoth)
                {
                    sb.Append(span[start]).Append(' ').Append(span[start + 1]).Append(' ');
                }
                else
                {
                    sb.Append(' ').Append(span[start]).Append(' ').Append(span[start + 1]);
                }

                copied = resume = start + 2;
                from = candidateIsSecond ? resume + 1 : resume;
            }
            else
            {
                from = p + 1;
            }
        }

        if (sb is null)
        {
            return line;
        }

        sb.Append(span[copied..]);
        return sb.ToString();
    }

    /// <summary>
    /// First v13a rule: surround each symbol in <c>{|}~ [\]^_` space!"#$%&amp; ()*+ :;&lt;=&gt;?@ /</c>
    /// with spaces. A single-character pattern, so a character loop is equivalent to the regex.
    /// </summary>
    private static string SeparateSymbols(string line)
    {
        var span = line.AsSpan();
        var next = span.IndexOfAny(Symbols);
        if (next < 0)
        {
            return line;
        }

        var sb = new StringBuilder(line.Length * 2);
        var copied = 0;
        while (next >= 0)
        {
            var p = copied + next;
            sb.Append(span[copied..p]).Append(' ').Append(span[p]).Append(' ');
            copied = p + 1;
            next = span[copied..].IndexOfAny(Symbols);
        }

        sb.Append(span[copied..]);
        return sb.ToString();
    }

    private static bool IsV13aSymbol(char c) => c switch
    {
        >= '{' and <= '~' => true, // { | } ~
        >= '[' and <= '`' => true, // [ \ ] ^ _ `
        >= ' ' and <= '&' => true, // space ! " # $ % &
        >= '(' and <= '+' => true, // ( ) * +
        >= ':' and <= '@' => true, // : ; < = > ? @
        '/' => true,
        _ => false,
    };

    // Period and comma, unless preceded by a digit.
    [GeneratedRegex("([^0-9])([.,])", RegexOptions.CultureInvariant)]
    private static partial Regex PeriodCommaNotAfterDigit();

    // Period and comma, unless followed by a digit.
    [GeneratedRegex("([.,])([^0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex PeriodCommaNotBeforeDigit();

    // Dash preceded by a digit.
    [GeneratedRegex("([0-9])(-)", RegexOptions.CultureInvariant)]
    private static partial Regex DashAfterDigit();
}
