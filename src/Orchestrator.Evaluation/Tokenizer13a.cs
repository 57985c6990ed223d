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
    internal static string ApplyV13aRules(string line)
    {
        line = SeparateSymbols(line);
        line = PeriodCommaNotAfterDigit().Replace(line, "${1} ${2} ");
        line = PeriodCommaNotBeforeDigit().Replace(line, " ${1} ${2}");
        line = DashAfterDigit().Replace(line, "${1} ${2} ");
        return string.Join(' ', PythonText.SplitWhitespace(line));
    }

    /// <summary>
    /// First v13a rule: surround each symbol in <c>{|}~ [\]^_` space!"#$%&amp; ()*+ :;&lt;=&gt;?@ /</c>
    /// with spaces. A single-character pattern, so a character loop is equivalent to the regex.
    /// </summary>
    private static string SeparateSymbols(string line)
    {
        var sb = new StringBuilder(line.Length * 2);
        foreach (var c in line)
        {
            if (IsV13aSymbol(c))
            {
                sb.Append(' ').Append(c).Append(' ');
            }
            else
            {
                sb.Append(c);
            }
        }

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
