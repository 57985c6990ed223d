using System.Numerics;
using System.Text;

namespace Orchestrator.Evaluation;

/// <summary>
/// Small helpers that reproduce the Python 3 string semantics the reference metric
/// implementations rely on (<c>str.split()</c>, <c>str.rstrip()</c>, <c>str.lower()</c>,
/// <c>format(x, ".Nf")</c>). They exist so that scores match the Python tools bit for bit.
/// </summary>
public static class PythonText
{
    /// <summary>
    /// True for the characters Python's <c>str.isspace()</c> accepts (and therefore the ones
    /// <c>str.split()</c>, <c>str.strip()</c> and the regex class <c>\s</c> treat as whitespace).
    /// This differs from <see cref="char.IsWhiteSpace(char)"/> for U+001C..U+001F.
    /// </summary>
    public static bool IsSpace(char c) => c switch
    {
        >= '\t' and <= '\r' => true,
        >= '\u001C' and <= '\u001F' => true,
        ' ' or '\u0085' or '\u00A0' or '\u1680' => true,
        >= '\u2000' and <= '\u200A' => true,
        '\u2028' or '\u2029' or '\u202F' or '\u205F' or '\u3000' => true,
        _ => false,
    };

    /// <summary>Python <c>s.split()</c>: split on runs of whitespace, dropping empty pieces.</summary>
    public static List<string> SplitWhitespace(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var parts = new List<string>();
        var i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsSpace(s[i]))
            {
                i++;
            }

            if (i >= s.Length)
            {
                break;
            }

            var start = i;
            while (i < s.Length && !IsSpace(s[i]))
            {
                i++;
            }

            parts.Add(s[start..i]);
        }

        return parts;
    }

    /// <summary>Python <c>s.rstrip()</c>.</summary>
    public static string RStrip(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var end = s.Length;
        while (end > 0 && IsSpace(s[end - 1]))
        {
            end--;
        }

        return end == s.Length ? s : s[..end];
    }

    /// <summary>Python <c>s.strip()</c>.</summary>
    public static string Strip(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var start = 0;
        var end = s.Length;
        while (start < end && IsSpace(s[start]))
        {
            start++;
        }

        while (end > start && IsSpace(s[end - 1]))
        {
            end--;
        }

        return start == 0 && end == s.Length ? s : s[start..end];
    }

    /// <summary>
    /// Approximation of Python's <c>str.lower()</c>: per-code-point invariant simple lower-case
    /// mapping plus the one unconditional multi-character mapping Python applies
    /// (U+0130 → "i\u0307"). Python's context-dependent final-sigma rule is not reproduced.
    /// ASCII input is handled exactly.
    /// </summary>
    public static string Lower(string s)
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
        foreach (var rune in s.EnumerateRunes())
        {
            if (rune.Value == 0x0130)
            {
                sb.Append("i\u0307");
            }
            else
            {
                sb.Append(Rune.ToLowerInvariant(rune).ToString());
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// Python <c>f"{value:.{decimals}f}"</c>: the exact binary value rounded half-to-even to
    /// <paramref name="decimals"/> places (.NET's "F" format rounds exact ties away from zero,
    /// which differs from Python for values such as 0.125).
    /// </summary>
    public static string FormatFixed(double value, int decimals)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(decimals);
        if (double.IsNaN(value))
        {
            return "nan";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }

        var negative = double.IsNegative(value);
        var bits = BitConverter.DoubleToInt64Bits(Math.Abs(value));
        var exponentBits = (int)((bits >> 52) & 0x7FF);
        var fraction = bits & 0xFFFFFFFFFFFFFL;
        BigInteger mantissa;
        int exponent;
        if (exponentBits == 0)
        {
            mantissa = fraction;
            exponent = -1074;
        }
        else
        {
            mantissa = fraction | (1L << 52);
            exponent = exponentBits - 1075;
        }

        // |value| = mantissa * 2^exponent; scaled = |value| * 10^decimals.
        var numerator = mantissa * BigInteger.Pow(10, decimals);
        BigInteger scaled;
        if (exponent >= 0)
        {
            scaled = numerator << exponent;
        }
        else
        {
            var denominator = BigInteger.One << -exponent;
            scaled = BigInteger.DivRem(numerator, denominator, out var remainder);
            var twice = remainder * 2;
            var cmp = twice.CompareTo(denominator);
            if (cmp > 0 || (cmp == 0 && !scaled.IsEven))
            {
                scaled += 1;
            }
        }

        var digits = scaled.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (decimals > 0)
        {
            if (digits.Length <= decimals)
            {
                digits = new string('0', decimals - digits.Length + 1) + digits;
            }

            digits = digits[..^decimals] + "." + digits[^decimals..];
        }

        return negative ? "-" + digits : digits;
    }
}
