using System.Text;
using System.Text.RegularExpressions;

namespace Orchestrator.Evaluation;

/// <summary>
/// METEOR 1.5's <c>-norm</c> text normaliser for English (<c>edu.cmu.meteor.util.Normalizer.normalizeLine</c>
/// with punctuation kept): the Moses-style tokenisation METEOR applies before lower-casing. Written from the
/// METEOR 1.5 source (cmu-mtlab/meteor) and checked line for line against its Java class on the E2E, WebNLG and
/// DART texts (see <c>MeteorTests</c>). Java regex classes are reproduced literally: <c>\s</c>, <c>\p{Digit}</c>
/// and <c>\p{Lower}</c> are ASCII-only there, so they are spelled out here.
/// </summary>
public static partial class MeteorNormalizer
{
    // Latin-1/Latin Extended-A letters and Cyrillic ranges METEOR counts as letters.
    private const string Alpha = "A-Za-zŠŽšžŸÀ-ÖØ-öø-žЀ-ӿԀ-ԧꙀ-ꙮ꙾-ꚗᴀ-ᵿ";
    private const string Alnum = "0-9" + Alpha;

    /// <summary>
    /// Moses' English non-breaking prefixes as METEOR 1.5 ships them (<c>resources/nonbreaking/english.prefixes</c>,
    /// LGPL): a word ending in a period keeps the period when the rest is one of these (or, for the
    /// numeric-only ones, when the next word is a number).
    /// </summary>
    private static readonly Dictionary<string, bool> NonBreaking = BuildNonBreaking();

    /// <summary>Normalises one line (language English, punctuation kept, before lower-casing).</summary>
    public static string Normalize(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var s = SeparateOther(" " + line + " ");

        s = MultiDot().Replace(s, " DOTMULTI$1");
        while (s.Contains("DOTMULTI.", StringComparison.Ordinal))
        {
            s = MultiDot2().Replace(s, "DOTDOTMULTI $1");
            s = s.Replace("DOTMULTI.", "DOTDOTMULTI", StringComparison.Ordinal);
        }

        s = Comma1().Replace(s, "$1 , $2");
        s = Comma2().Replace(s, "$1 , $2");
        s = Comma3().Replace(s, "$1 , $2");

        s = QuoteNorm().Replace(s, "'");
        s = QuoteNorm2().Replace(s, " \" ");

        s = s.Replace("\u2013", "-", StringComparison.Ordinal).Replace("--", "-", StringComparison.Ordinal);
        s = RemoveDash().Replace(s, "$1 $2");

        s = ContractionEn1().Replace(s, "$1 ' $2");
        s = ContractionEn2().Replace(s, "$1 ' $2");
        s = ContractionEn3().Replace(s, "$1 ' $2");
        s = ContractionEn4().Replace(s, "$1 '$2");
        s = ContractionEn5().Replace(s, "$1 '$2");

        var words = JavaTokens(s);
        var sb = new StringBuilder(s.Length + 8);
        for (var i = 0; i < words.Count; i++)
        {
            var word = words[i];
            if (word.Length > 1 && word.EndsWith('.'))
            {
                var pre = word[..^1];
                var hasType = NonBreaking.TryGetValue(pre, out var numericOnly);
                if (pre.Contains('.') && AlphaChar().IsMatch(pre))
                {
                    // U.S. -> US
                    sb.Append(word.Replace(".", "", StringComparison.Ordinal));
                }
                else if ((hasType && !numericOnly) || (i < words.Count - 1 && words[i + 1][0] is >= 'a' and <= 'z'))
                {
                    sb.Append(word);
                }
                else if (hasType && numericOnly && i < words.Count - 1 && words[i + 1][0] is >= '0' and <= '9')
                {
                    sb.Append(word);
                }
                else
                {
                    sb.Append(pre).Append(" .");
                }
            }
            else
            {
                sb.Append(word);
            }

            sb.Append(' ');
        }

        s = sb.ToString();
        while (s.Contains("DOTDOTMULTI", StringComparison.Ordinal))
        {
            s = s.Replace("DOTDOTMULTI", "DOTMULTI.", StringComparison.Ordinal);
        }

        s = s.Replace("DOTMULTI", ".", StringComparison.Ordinal);
        s = White().Replace(s, " ");
        return JavaTrim(s);
    }

    /// <summary>Java <c>StringTokenizer</c> with its default delimiters (space, tab, newline, carriage return, form feed).</summary>
    public static List<string> JavaTokens(string s)
    {
        var tokens = new List<string>();
        var start = -1;
        for (var i = 0; i <= s.Length; i++)
        {
            var delimiter = i == s.Length || s[i] is ' ' or '\t' or '\n' or '\r' or '\f';
            if (delimiter)
            {
                if (start >= 0)
                {
                    tokens.Add(s[start..i]);
                    start = -1;
                }
            }
            else if (start < 0)
            {
                start = i;
            }
        }

        return tokens;
    }

    /// <summary>Java <c>String.trim()</c>: drops characters up to U+0020 at both ends.</summary>
    public static string JavaTrim(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && s[start] <= ' ')
        {
            start++;
        }

        while (end > start && s[end - 1] <= ' ')
        {
            end--;
        }

        return s[start..end];
    }

    /// <summary>
    /// <c>([^alnum\s\.\'\`\,\-\‘\’])</c> → <c>" $1 "</c>. Java matches whole code points, so a surrogate pair is
    /// wrapped as one character.
    /// </summary>
    private static string SeparateOther(string s)
    {
        var sb = new StringBuilder(s.Length * 2);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                sb.Append(' ').Append(c).Append(s[i + 1]).Append(' ');
                i++;
            }
            else if (IsKept(c))
            {
                sb.Append(c);
            }
            else
            {
                sb.Append(' ').Append(c).Append(' ');
            }
        }

        return sb.ToString();
    }

    private static bool IsKept(char c) =>
        c is (>= '0' and <= '9') or (>= 'A' and <= 'Z') or (>= 'a' and <= 'z')
            or 'Š' or 'Ž' or 'š' or 'ž' or 'Ÿ' or (>= 'À' and <= 'Ö') or (>= 'Ø' and <= 'ö') or (>= 'ø' and <= 'ž')
            or (>= '\u0400' and <= '\u04FF') or (>= '\u0500' and <= '\u0527') or (>= '\uA640' and <= '\uA66E')
            or (>= '\uA67E' and <= '\uA697') or (>= '\u1D00' and <= '\u1D7F')
            or ' ' or '\t' or '\n' or '\u000B' or '\f' or '\r'
            or '.' or '\'' or '`' or ',' or '-' or '\u2018' or '\u2019';

    private static Dictionary<string, bool> BuildNonBreaking()
    {
        var result = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        {
            result[letter.ToString()] = false;
        }

        string[] titles =
        [
            "Adj", "Adm", "Adv", "Asst", "Bart", "Bldg", "Brig", "Bros", "Capt", "Cmdr", "Col", "Comdr", "Con", "Corp", "Cpl",
            "DR", "Dr", "Drs", "Ens", "Gen", "Gov", "Hon", "Hr", "Hosp", "Insp", "Lt", "MM", "MR", "MRS", "MS", "Maj", "Messrs",
            "Mlle", "Mme", "Mr", "Mrs", "Ms", "Msgr", "Op", "Ord", "Pfc", "Ph", "Prof", "Pvt", "Rep", "Reps", "Res", "Rev", "Rt",
            "Sen", "Sens", "Sfc", "Sgt", "Sr", "St", "Supt", "Surg", "v", "vs", "i.e", "rev", "e.g", "Nos", "Nr",
        ];
        foreach (var t in titles)
        {
            result[t] = false;
        }

        foreach (var numericOnly in new[] { "No", "Art", "pp" })
        {
            result[numericOnly] = true;
        }

        return result;
    }

    [GeneratedRegex(@"\.([\.]+)")]
    private static partial Regex MultiDot();

    [GeneratedRegex(@"DOTMULTI\.([^\.])")]
    private static partial Regex MultiDot2();

    [GeneratedRegex(@"([^0-9])[,]([^0-9])")]
    private static partial Regex Comma1();

    [GeneratedRegex(@"([0-9])[,]([^0-9])")]
    private static partial Regex Comma2();

    [GeneratedRegex(@"([^0-9])[,]([0-9])")]
    private static partial Regex Comma3();

    [GeneratedRegex("([`\u2018\u2019])")]
    private static partial Regex QuoteNorm();

    [GeneratedRegex("([\u201C\u201D]|'')")]
    private static partial Regex QuoteNorm2();

    [GeneratedRegex("([" + Alnum + @"\.])[\-]([" + Alnum + "])")]
    private static partial Regex RemoveDash();

    [GeneratedRegex("([^" + Alpha + "])[']([^" + Alpha + "])")]
    private static partial Regex ContractionEn1();

    [GeneratedRegex("([^" + Alpha + "0-9])[']([" + Alpha + "])")]
    private static partial Regex ContractionEn2();

    [GeneratedRegex("([" + Alpha + "])[']([^" + Alpha + "])")]
    private static partial Regex ContractionEn3();

    [GeneratedRegex("([" + Alpha + "])[']([" + Alpha + "])")]
    private static partial Regex ContractionEn4();

    [GeneratedRegex("([0-9])[']([s])")]
    private static partial Regex ContractionEn5();

    [GeneratedRegex("[" + Alpha + "]")]
    private static partial Regex AlphaChar();

    [GeneratedRegex("[  \u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u202F\u205F\u3000\u00A0]+")]
    private static partial Regex White();
}
