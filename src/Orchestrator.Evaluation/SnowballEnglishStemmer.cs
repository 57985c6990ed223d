using System.Text;

namespace Orchestrator.Evaluation;

/// <summary>
/// The Snowball English ("Porter2") stemmer, as generated into Java by Snowball and shipped inside METEOR 1.5
/// (<c>org.tartarus.snowball.ext.englishStemmer</c>, used by METEOR's <c>stem</c> module). Written from the
/// published algorithm (snowballstem.org, <c>english.sbl</c>): exceptional forms, the <c>gener/commun/arsen</c>
/// regions, steps 1a–5. Checked word for word against that Java class on the vocabulary of the E2E, WebNLG and
/// DART data (see <c>SnowballEnglishStemmerTests</c>). Intended for lower-case words; not thread-safe state is
/// avoided, so one instance may be shared.
/// </summary>
public sealed class SnowballEnglishStemmer
{
    private static readonly Dictionary<string, string> Exception1 = new(StringComparer.Ordinal)
    {
        ["skis"] = "ski", ["skies"] = "sky", ["dying"] = "die", ["lying"] = "lie", ["tying"] = "tie",
        ["idly"] = "idl", ["gently"] = "gentl", ["ugly"] = "ugli", ["early"] = "earli", ["only"] = "onli",
        ["singly"] = "singl", ["sky"] = "sky", ["news"] = "news", ["howe"] = "howe", ["atlas"] = "atlas",
        ["cosmos"] = "cosmos", ["bias"] = "bias", ["andes"] = "andes",
    };

    private static readonly HashSet<string> Exception2 = new(StringComparer.Ordinal)
    {
        "inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed",
    };

    private static readonly (string Suffix, int Rule)[] Step1bSuffixes =
        [("eedly", 1), ("ingly", 2), ("edly", 2), ("eed", 1), ("ing", 2), ("ed", 2)];

    private static readonly (string Suffix, string? Replacement)[] Step2Suffixes =
    [
        ("ization", "ize"), ("ational", "ate"), ("fulness", "ful"), ("ousness", "ous"), ("iveness", "ive"),
        ("tional", "tion"), ("biliti", "ble"), ("lessli", "less"), ("entli", "ent"), ("ation", "ate"),
        ("alism", "al"), ("aliti", "al"), ("ousli", "ous"), ("iviti", "ive"), ("fulli", "ful"),
        ("enci", "ence"), ("anci", "ance"), ("abli", "able"), ("izer", "ize"), ("ator", "ate"),
        ("alli", "al"), ("bli", "ble"), ("ogi", null), ("li", null),
    ];

    private static readonly (string Suffix, string? Replacement)[] Step3Suffixes =
    [
        ("ational", "ate"), ("tional", "tion"), ("alize", "al"), ("icate", "ic"), ("iciti", "ic"),
        ("ative", null), ("ical", "ic"), ("ness", ""), ("ful", ""),
    ];

    private static readonly string[] Step4Suffixes =
    [
        "ement", "ance", "ence", "able", "ible", "ment", "ant", "ent", "ism", "ate", "iti", "ous", "ive", "ize", "ion",
        "al", "er", "ic",
    ];

    /// <summary>Stems one word.</summary>
    public string Stem(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        if (Exception1.TryGetValue(word, out var exceptional))
        {
            return exceptional;
        }

        if (word.Length < 3)
        {
            return word;
        }

        var w = new StringBuilder(word);

        // Prelude: drop an initial apostrophe; y at the start or after a vowel becomes Y (a consonant).
        if (w[0] == '\'')
        {
            w.Remove(0, 1);
        }

        var yFound = false;
        if (w.Length > 0 && w[0] == 'y')
        {
            w[0] = 'Y';
            yFound = true;
        }

        for (var i = 1; i < w.Length; i++)
        {
            if (w[i] == 'y' && IsVowel(w[i - 1]))
            {
                w[i] = 'Y';
                yFound = true;
            }
        }

        var (p1, p2) = MarkRegions(w);

        Step1a(w);
        if (!Exception2.Contains(w.ToString()))
        {
            Step1b(w, p1);
            Step1c(w);
            Step2(w, p1);
            Step3(w, p1, p2);
            Step4(w, p2);
            Step5(w, p1, p2);
        }

        if (yFound)
        {
            w.Replace('Y', 'y');
        }

        return w.ToString();
    }

    private static bool IsVowel(char c) => c is 'a' or 'e' or 'i' or 'o' or 'u' or 'y';

    private static bool IsNonVowelWxy(char c) => !IsVowel(c) && c is not ('w' or 'x' or 'Y');

    private static (int P1, int P2) MarkRegions(StringBuilder w)
    {
        var limit = w.Length;
        int p1 = limit, p2 = limit;
        int cursor;
        var s = w.ToString();
        if (s.StartsWith("gener", StringComparison.Ordinal) || s.StartsWith("arsen", StringComparison.Ordinal))
        {
            cursor = 5;
        }
        else if (s.StartsWith("commun", StringComparison.Ordinal))
        {
            cursor = 6;
        }
        else
        {
            cursor = GoPastVowelThenNonVowel(s, 0);
            if (cursor < 0)
            {
                return (p1, p2);
            }
        }

        p1 = cursor;
        cursor = GoPastVowelThenNonVowel(s, cursor);
        if (cursor >= 0)
        {
            p2 = cursor;
        }

        return (p1, p2);
    }

    /// <summary>Position just after the first non-vowel that follows a vowel, from <paramref name="start"/>; -1 if none.</summary>
    private static int GoPastVowelThenNonVowel(string s, int start)
    {
        var i = start;
        while (i < s.Length && !IsVowel(s[i]))
        {
            i++;
        }

        if (i >= s.Length)
        {
            return -1;
        }

        i++;
        while (i < s.Length && IsVowel(s[i]))
        {
            i++;
        }

        return i >= s.Length ? -1 : i + 1;
    }

    /// <summary>Whether <c>w[..end]</c> ends in a short syllable.</summary>
    private static bool EndsShort(StringBuilder w, int end)
    {
        if (end >= 3 && IsNonVowelWxy(w[end - 1]) && IsVowel(w[end - 2]) && !IsVowel(w[end - 3]))
        {
            return true;
        }

        return end == 2 && !IsVowel(w[1]) && IsVowel(w[0]);
    }

    private static bool EndsWith(StringBuilder w, string suffix)
    {
        if (w.Length < suffix.Length)
        {
            return false;
        }

        var offset = w.Length - suffix.Length;
        for (var i = 0; i < suffix.Length; i++)
        {
            if (w[offset + i] != suffix[i])
            {
                return false;
            }
        }

        return true;
    }

    private static void Replace(StringBuilder w, int suffixLength, string replacement)
    {
        w.Length -= suffixLength;
        w.Append(replacement);
    }

    private static bool HasVowel(StringBuilder w, int end)
    {
        for (var i = 0; i < end; i++)
        {
            if (IsVowel(w[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static void Step1a(StringBuilder w)
    {
        if (EndsWith(w, "'s'"))
        {
            w.Length -= 3;
        }
        else if (EndsWith(w, "'s"))
        {
            w.Length -= 2;
        }
        else if (EndsWith(w, "'"))
        {
            w.Length -= 1;
        }

        if (EndsWith(w, "sses"))
        {
            Replace(w, 4, "ss");
        }
        else if (EndsWith(w, "ied") || EndsWith(w, "ies"))
        {
            Replace(w, 3, w.Length - 3 >= 2 ? "i" : "ie");
        }
        else if (EndsWith(w, "us") || EndsWith(w, "ss"))
        {
            // unchanged
        }
        else if (EndsWith(w, "s"))
        {
            // Delete the s if the part before the letter preceding it contains a vowel.
            if (w.Length >= 2 && HasVowel(w, w.Length - 2))
            {
                w.Length -= 1;
            }
        }
    }

    private static void Step1b(StringBuilder w, int p1)
    {
        foreach (var (suffix, rule) in Step1bSuffixes)
        {
            if (!EndsWith(w, suffix))
            {
                continue;
            }

            var start = w.Length - suffix.Length;
            if (rule == 1)
            {
                if (start >= p1)
                {
                    Replace(w, suffix.Length, "ee");
                }

                return;
            }

            if (!HasVowel(w, start))
            {
                return;
            }

            w.Length = start;
            if (EndsWith(w, "at") || EndsWith(w, "bl") || EndsWith(w, "iz"))
            {
                w.Append('e');
            }
            else if (w.Length >= 2 && w[^1] == w[^2] && w[^1] is 'b' or 'd' or 'f' or 'g' or 'm' or 'n' or 'p' or 'r' or 't')
            {
                w.Length -= 1;
            }
            else if (w.Length == p1 && EndsShort(w, w.Length))
            {
                w.Append('e');
            }

            return;
        }
    }

    private static void Step1c(StringBuilder w)
    {
        if (w.Length >= 3 && w[^1] is 'y' or 'Y' && !IsVowel(w[^2]))
        {
            w[^1] = 'i';
        }
    }

    private static void Step2(StringBuilder w, int p1)
    {
        foreach (var (suffix, replacement) in Step2Suffixes)
        {
            if (!EndsWith(w, suffix))
            {
                continue;
            }

            var start = w.Length - suffix.Length;
            if (start < p1)
            {
                return;
            }

            switch (suffix)
            {
                case "ogi":
                    if (start > 0 && w[start - 1] == 'l')
                    {
                        Replace(w, 3, "og");
                    }

                    break;
                case "li":
                    if (start > 0 && w[start - 1] is 'c' or 'd' or 'e' or 'g' or 'h' or 'k' or 'm' or 'n' or 'r' or 't')
                    {
                        w.Length = start;
                    }

                    break;
                default:
                    Replace(w, suffix.Length, replacement!);
                    break;
            }

            return;
        }
    }

    private static void Step3(StringBuilder w, int p1, int p2)
    {
        foreach (var (suffix, replacement) in Step3Suffixes)
        {
            if (!EndsWith(w, suffix))
            {
                continue;
            }

            var start = w.Length - suffix.Length;
            if (start < p1)
            {
                return;
            }

            if (replacement is null)
            {
                // 'ative' is deleted only in R2.
                if (start >= p2)
                {
                    w.Length = start;
                }
            }
            else
            {
                Replace(w, suffix.Length, replacement);
            }

            return;
        }
    }

    private static void Step4(StringBuilder w, int p2)
    {
        foreach (var suffix in Step4Suffixes)
        {
            if (!EndsWith(w, suffix))
            {
                continue;
            }

            var start = w.Length - suffix.Length;
            if (start < p2)
            {
                return;
            }

            if (suffix == "ion")
            {
                if (start > 0 && w[start - 1] is 's' or 't')
                {
                    w.Length = start;
                }
            }
            else
            {
                w.Length = start;
            }

            return;
        }
    }

    private static void Step5(StringBuilder w, int p1, int p2)
    {
        if (EndsWith(w, "e"))
        {
            var start = w.Length - 1;
            if (start >= p2 || (start >= p1 && !EndsShort(w, start)))
            {
                w.Length = start;
            }
        }
        else if (EndsWith(w, "l"))
        {
            var start = w.Length - 1;
            if (start >= p2 && start > 0 && w[start - 1] == 'l')
            {
                w.Length = start;
            }
        }
    }
}
