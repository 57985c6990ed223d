using System.Text;

namespace Orchestrator.Evaluation;

/// <summary>
/// The few Java string behaviours the Java reference implementations (METEOR, TER) depend on:
/// <c>String.hashCode()</c> (METEOR compares words by hash) and <c>String.toLowerCase()</c>.
/// </summary>
public static class JavaText
{
    /// <summary>Java's <c>String.hashCode()</c>: <c>s[0]·31^(n-1) + … + s[n-1]</c> over UTF-16 units, with int overflow.</summary>
    public static int HashCode(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var h = 0;
        foreach (var c in s)
        {
            h = unchecked((31 * h) + c);
        }

        return h;
    }

    /// <summary>
    /// Java's <c>String.toLowerCase()</c> for the cases that occur in text: ASCII exactly; other characters by the
    /// invariant simple mapping, plus Java's two special cases (U+0130 → <c>i̇</c>, and a capital sigma at the end of
    /// a word → final sigma).
    /// </summary>
    public static string ToLower(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var ascii = true;
        foreach (var c in s)
        {
            if (c > '\u007F')
            {
                ascii = false;
                break;
            }
        }

        if (ascii)
        {
            return s.ToLowerInvariant();
        }

        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '\u0130')
            {
                sb.Append("i\u0307");
            }
            else if (c == '\u03A3')
            {
                var afterLetter = i > 0 && char.IsLetter(s[i - 1]);
                var beforeLetter = i + 1 < s.Length && char.IsLetter(s[i + 1]);
                sb.Append(afterLetter && !beforeLetter ? '\u03C2' : '\u03C3');
            }
            else if (char.IsHighSurrogate(c) && i + 1 < s.Length && Rune.TryCreate(c, s[i + 1], out var rune))
            {
                sb.Append(Rune.ToLowerInvariant(rune).ToString());
                i++;
            }
            else
            {
                sb.Append(char.ToLowerInvariant(c));
            }
        }

        return sb.ToString();
    }
}
