namespace Orchestrator.Evaluation;

/// <summary>
/// The Porter stemmer as NLTK's <c>PorterStemmer()</c> implements it in its default
/// <c>NLTK_EXTENSIONS</c> mode (the stemmer Google's <c>rouge_score</c> uses): Porter's algorithm
/// plus Martin Porter's later extensions and NLTK's own (irregular-form table, <c>-ies</c>/<c>-ied</c>
/// on four-letter words, <c>(*c and not c) y → i</c>, <c>alli</c> first in step 2, <c>fulli</c>,
/// <c>logi</c>, words of ≤ 2 letters left alone). Intended for lower-case ASCII words. Thread-safe.
/// </summary>
public sealed class PorterStemmer
{
    private static readonly Dictionary<string, string> IrregularForms = new(StringComparer.Ordinal)
    {
        ["sky"] = "sky",
        ["skies"] = "sky",
        ["dying"] = "die",
        ["lying"] = "lie",
        ["tying"] = "tie",
        ["news"] = "news",
        ["innings"] = "inning",
        ["inning"] = "inning",
        ["outings"] = "outing",
        ["outing"] = "outing",
        ["cannings"] = "canning",
        ["canning"] = "canning",
        ["howe"] = "howe",
        ["proceed"] = "proceed",
        ["exceed"] = "exceed",
        ["succeed"] = "succeed",
    };

    // Suffix rules: (suffix, replacement, condition on the remaining stem). The first rule whose
    // suffix matches decides: if its condition fails, the word is returned unchanged.
    private readonly (string Suffix, string Replacement, Func<string, bool> Condition)[] _step2Rules;
    private readonly (string Suffix, string Replacement, Func<string, bool> Condition)[] _step3Rules;
    private readonly (string Suffix, string Replacement, Func<string, bool> Condition)[] _step4Rules;

    /// <summary>Creates a stemmer (NLTK_EXTENSIONS mode).</summary>
    public PorterStemmer()
    {
        Func<string, bool> m0 = stem => Measure(stem) > 0;
        Func<string, bool> m1 = stem => Measure(stem) > 1;
        _step2Rules =
        [
            ("ational", "ate", m0),
            ("tional", "tion", m0),
            ("enci", "ence", m0),
            ("anci", "ance", m0),
            ("izer", "ize", m0),
            ("bli", "ble", m0),
            ("alli", "al", m0),
            ("entli", "ent", m0),
            ("eli", "e", m0),
            ("ousli", "ous", m0),
            ("ization", "ize", m0),
            ("ation", "ate", m0),
            ("ator", "ate", m0),
            ("alism", "al", m0),
            ("iveness", "ive", m0),
            ("fulness", "ful", m0),
            ("ousness", "ous", m0),
            ("aliti", "al", m0),
            ("iviti", "ive", m0),
            ("biliti", "ble", m0),
            ("fulli", "ful", m0),
            // The 'l' of 'logi' stays with the stem for the measure test.
            ("logi", "log", stem => Measure(stem + "l") > 0),
        ];
        _step3Rules =
        [
            ("icate", "ic", m0),
            ("ative", "", m0),
            ("alize", "al", m0),
            ("iciti", "ic", m0),
            ("ical", "ic", m0),
            ("ful", "", m0),
            ("ness", "", m0),
        ];
        _step4Rules =
        [
            ("al", "", m1),
            ("ance", "", m1),
            ("ence", "", m1),
            ("er", "", m1),
            ("ic", "", m1),
            ("able", "", m1),
            ("ible", "", m1),
            ("ant", "", m1),
            ("ement", "", m1),
            ("ment", "", m1),
            ("ent", "", m1),
            ("ion", "", stem => Measure(stem) > 1 && stem.Length > 0 && (stem[^1] == 's' || stem[^1] == 't')),
            ("ou", "", m1),
            ("ism", "", m1),
            ("ate", "", m1),
            ("iti", "", m1),
            ("ous", "", m1),
            ("ive", "", m1),
            ("ize", "", m1),
        ];
    }

    /// <summary>Stems one word (lower-cased first, as NLTK does by default).</summary>
    public string Stem(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        var stem = PythonText.Lower(word);

        if (IrregularForms.TryGetValue(word, out _) && IrregularForms.TryGetValue(stem, out var irregular))
        {
            return irregular;
        }

        if (word.Length <= 2)
        {
            return stem;
        }

        stem = Step1a(stem);
        stem = Step1b(stem);
        stem = Step1c(stem);
        stem = Step2(stem);
        stem = ApplyRules(stem, _step3Rules);
        stem = ApplyRules(stem, _step4Rules);
        stem = Step5a(stem);
        stem = Step5b(stem);
        return stem;
    }

    private static bool IsConsonant(string word, int i)
    {
        // A consonant is a letter other than a, e, i, o, u, and other than y preceded by a consonant.
        return word[i] switch
        {
            'a' or 'e' or 'i' or 'o' or 'u' => false,
            'y' => i == 0 || !IsConsonant(word, i - 1),
            _ => true,
        };
    }

    /// <summary>Porter's m: the number of vowel→consonant transitions ("vc" pairs) in the word.</summary>
    private static int Measure(string stem)
    {
        var m = 0;
        var previousIsVowel = false;
        for (var i = 0; i < stem.Length; i++)
        {
            var consonant = IsConsonant(stem, i);
            if (consonant && previousIsVowel)
            {
                m++;
            }

            previousIsVowel = !consonant;
        }

        return m;
    }

    private static bool ContainsVowel(string stem)
    {
        for (var i = 0; i < stem.Length; i++)
        {
            if (!IsConsonant(stem, i))
            {
                return true;
            }
        }

        return false;
    }

    private static bool EndsDoubleConsonant(string word) =>
        word.Length >= 2 && word[^1] == word[^2] && IsConsonant(word, word.Length - 1);

    /// <summary>Condition *o: ends consonant-vowel-consonant with the last not w, x or y; or (NLTK) is a two-letter vowel-consonant word.</summary>
    private static bool EndsCvc(string word)
    {
        var n = word.Length;
        if (n >= 3
            && IsConsonant(word, n - 3)
            && !IsConsonant(word, n - 2)
            && IsConsonant(word, n - 1)
            && word[^1] is not ('w' or 'x' or 'y'))
        {
            return true;
        }

        return n == 2 && !IsConsonant(word, 0) && IsConsonant(word, 1);
    }

    private static string ApplyRules(string word, (string Suffix, string Replacement, Func<string, bool> Condition)[] rules)
    {
        foreach (var (suffix, replacement, condition) in rules)
        {
            if (word.EndsWith(suffix, StringComparison.Ordinal))
            {
                var stem = word[..^suffix.Length];
                return condition(stem) ? stem + replacement : word;
            }
        }

        return word;
    }

    private static string Step1a(string word)
    {
        // NLTK: 'dies' -> 'die' (four-letter -ies words), but 'flies' -> 'fli'.
        if (word.Length == 4 && word.EndsWith("ies", StringComparison.Ordinal))
        {
            return word[..^3] + "ie";
        }

        if (word.EndsWith("sses", StringComparison.Ordinal))
        {
            return word[..^2];
        }

        if (word.EndsWith("ies", StringComparison.Ordinal))
        {
            return word[..^2];
        }

        if (word.EndsWith("ss", StringComparison.Ordinal))
        {
            return word;
        }

        if (word.EndsWith('s'))
        {
            return word[..^1];
        }

        return word;
    }

    private static string Step1b(string word)
    {
        // NLTK: 'died' -> 'die' (four-letter -ied words), 'spied' -> 'spi'.
        if (word.EndsWith("ied", StringComparison.Ordinal))
        {
            return word[..^3] + (word.Length == 4 ? "ie" : "i");
        }

        if (word.EndsWith("eed", StringComparison.Ordinal))
        {
            var eedStem = word[..^3];
            return Measure(eedStem) > 0 ? eedStem + "ee" : word;
        }

        string? stem = null;
        if (word.EndsWith("ed", StringComparison.Ordinal) && ContainsVowel(word[..^2]))
        {
            stem = word[..^2];
        }
        else if (word.EndsWith("ing", StringComparison.Ordinal) && ContainsVowel(word[..^3]))
        {
            stem = word[..^3];
        }

        if (stem is null)
        {
            return word;
        }

        if (stem.EndsWith("at", StringComparison.Ordinal)
            || stem.EndsWith("bl", StringComparison.Ordinal)
            || stem.EndsWith("iz", StringComparison.Ordinal))
        {
            return stem + "e";
        }

        if (EndsDoubleConsonant(stem))
        {
            // Undouble, except for l, s and z (fall, hiss, fizz keep both letters).
            return stem[^1] is 'l' or 's' or 'z' ? stem : stem[..^1];
        }

        return Measure(stem) == 1 && EndsCvc(stem) ? stem + "e" : stem;
    }

    private static string Step1c(string word)
    {
        // NLTK: y -> i only after a consonant that is not the word's only letter.
        if (word.EndsWith('y'))
        {
            var stem = word[..^1];
            return stem.Length > 1 && IsConsonant(stem, stem.Length - 1) ? stem + "i" : word;
        }

        return word;
    }

    private string Step2(string word)
    {
        // NLTK: try ALLI -> AL first and, if it applies, run step 2 again on the result.
        if (word.EndsWith("alli", StringComparison.Ordinal) && Measure(word[..^4]) > 0)
        {
            return Step2(word[..^4] + "al");
        }

        return ApplyRules(word, _step2Rules);
    }

    private static string Step5a(string word)
    {
        if (word.EndsWith('e'))
        {
            var stem = word[..^1];
            var m = Measure(stem);
            if (m > 1 || (m == 1 && !EndsCvc(stem)))
            {
                return stem;
            }
        }

        return word;
    }

    private static string Step5b(string word)
    {
        // (m > 1 and *d and *L) -> single letter; the measure is taken on the word minus one 'l'.
        if (word.EndsWith("ll", StringComparison.Ordinal))
        {
            return Measure(word[..^1]) > 1 ? word[..^1] : word;
        }

        return word;
    }
}
