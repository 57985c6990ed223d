namespace Orchestrator.Evaluation;

/// <summary>Which implementation of NIST the E2E scripts may run (they differ when segments have different numbers of references).</summary>
public enum NistVariant
{
    /// <summary>
    /// <c>mteval-v13a-sig.pl</c> as tuetschek/e2e-metrics' <c>measure_scores.py</c> runs it by default (the official
    /// E2E challenge numbers): ASCII lower-casing, the length penalty against total reference words divided by the
    /// average number of references per segment.
    /// </summary>
    MtevalPerl,

    /// <summary>
    /// <c>metrics/pymteval.py</c> <c>NISTScore</c> (<c>measure_scores.py -p</c>): Unicode lower-casing, an empty line is
    /// one empty token, the length penalty against the sum of per-segment average reference lengths, and n-gram
    /// totals <c>len − n + 1</c> that may go negative for very short outputs.
    /// </summary>
    PyMteval,
}

/// <summary>
/// NIST (Doddington 2002) with 5-gram information weights from the references of the evaluated corpus, as the E2E
/// NLG challenge computes it. Both implementations the e2e-metrics scripts offer are reproduced from their source
/// (tuetschek/e2e-metrics 1b9c4d8: <c>mteval/mteval-v13a-sig.pl</c> and <c>metrics/pymteval.py</c>): mteval-13a
/// tokenisation, info(w1..wn) = log2(count(w1..wn-1) / count(w1..wn)) over all references (the 0-gram count is the
/// number of reference words), clipped matches, Σn info/ngrams, times the length penalty
/// exp(−β·log²(ratio)) with β = −ln 0.5 / ln² 1.5. Checked against both on the e2e_dev200 vectors (see <c>NistTests</c>).
/// </summary>
public static class Nist
{
    private const int MaxN = 5;

    /// <summary>Corpus NIST of hypotheses against per-hypothesis reference groups (empty reference strings are dropped).</summary>
    public static double Corpus(
        IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis,
        NistVariant variant = NistVariant.MtevalPerl)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referencesPerHypothesis);
        if (hypotheses.Count != referencesPerHypothesis.Count)
        {
            throw new ArgumentException($"There are {referencesPerHypothesis.Count} reference groups but {hypotheses.Count} hypotheses.", nameof(referencesPerHypothesis));
        }

        if (hypotheses.Count == 0)
        {
            throw new ArgumentException("At least one hypothesis is required.", nameof(hypotheses));
        }

        var hyps = new List<string>[hypotheses.Count];
        var refs = new List<List<string>>[hypotheses.Count];
        for (var i = 0; i < hypotheses.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(hypotheses[i], $"hypotheses[{i}]");
            var group = (referencesPerHypothesis[i] ?? []).Where(r => !string.IsNullOrEmpty(r)).ToList();
            if (group.Count == 0)
            {
                throw new ArgumentException($"Segment {i} has no references (all were null or empty).", nameof(referencesPerHypothesis));
            }

            hyps[i] = Tokenize(hypotheses[i], variant);
            refs[i] = group.Select(r => Tokenize(r, variant)).ToList();
        }

        // Reference n-gram counts over the whole corpus (order 0 = number of reference words).
        var counts = new Dictionary<string, int>[MaxN + 1];
        for (var n = 0; n <= MaxN; n++)
        {
            counts[n] = new Dictionary<string, int>(StringComparer.Ordinal);
        }

        long totalRefWords = 0;
        foreach (var group in refs)
        {
            foreach (var r in group)
            {
                totalRefWords += r.Count;
                for (var n = 1; n <= MaxN; n++)
                {
                    for (var i = 0; i + n <= r.Count; i++)
                    {
                        var key = Key(r, i, n);
                        counts[n][key] = counts[n].GetValueOrDefault(key) + 1;
                    }
                }
            }
        }

        double Info(string ngram, int n)
        {
            var count = counts[n].GetValueOrDefault(ngram);
            if (count == 0)
            {
                return 0.0;
            }

            double prefix = n == 1 ? totalRefWords : counts[n - 1].GetValueOrDefault(ngram[..ngram.LastIndexOf(' ')]);
            return variant == NistVariant.MtevalPerl
                ? -Math.Log(count / prefix) / Math.Log(2)
                : Math.Log(prefix / count) / Math.Log(2);
        }

        var hitInfo = new double[MaxN + 1];
        var hypNgrams = new double[MaxN + 1];
        double refWords = 0, refsCounted = 0, avgRefLen = 0;
        for (var s = 0; s < hyps.Length; s++)
        {
            var hyp = hyps[s];
            for (var n = 1; n <= MaxN; n++)
            {
                hypNgrams[n] += variant == NistVariant.MtevalPerl ? Math.Max(0, hyp.Count - n + 1) : hyp.Count - (n - 1);
                var maxRef = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var r in refs[s])
                {
                    foreach (var (ngram, c) in CountNgrams(r, n))
                    {
                        if (c > maxRef.GetValueOrDefault(ngram))
                        {
                            maxRef[ngram] = c;
                        }
                    }
                }

                foreach (var (ngram, c) in CountNgrams(hyp, n))
                {
                    var hits = Math.Min(c, maxRef.GetValueOrDefault(ngram));
                    if (hits > 0)
                    {
                        hitInfo[n] += Info(ngram, n) * hits;
                    }
                }
            }

            var segmentRefWords = refs[s].Sum(r => r.Count);
            refWords += segmentRefWords;
            refsCounted += refs[s].Count(r => r.Count > 0);
            avgRefLen += segmentRefWords / (double)refs[s].Count;
        }

        double score = 0;
        for (var n = 1; n <= MaxN; n++)
        {
            if (variant == NistVariant.MtevalPerl)
            {
                score += hitInfo[n] / Math.Max(hypNgrams[n], 1);
            }
            else if (hypNgrams[n] != 0)
            {
                // pymteval divides by the total without a guard (a ZeroDivisionError there); 0 here.
                score += hitInfo[n] / hypNgrams[n];
            }
        }

        double penalty;
        if (variant == NistVariant.MtevalPerl)
        {
            var averageRefs = refsCounted / hyps.Length;
            penalty = refWords == 0 ? 0.0 : LengthPenaltyPerl(hypNgrams[1] / (refWords / averageRefs));
        }
        else
        {
            penalty = avgRefLen == 0 ? 0.0 : LengthPenaltyPython(hypNgrams[1] / avgRefLen);
        }

        return score * penalty;
    }

    /// <summary>The tokens NIST counts for one text in the given variant.</summary>
    public static List<string> Tokenize(string text, NistVariant variant)
    {
        if (variant == NistVariant.MtevalPerl)
        {
            var tokenized = AsciiLower(Tokenizer13a.Tokenize(text));
            return tokenized.Length == 0 ? [] : [.. tokenized.Split(' ')];
        }

        return E2eChallengeBleu.TokenizeToList(text).Select(PythonText.Lower).ToList();
    }

    private static double LengthPenaltyPerl(double ratio)
    {
        if (ratio >= 1)
        {
            return 1;
        }

        if (ratio <= 0)
        {
            return 0;
        }

        var beta = -Math.Log(0.5) / Math.Log(1.5) / Math.Log(1.5);
        return Math.Exp(-beta * Math.Log(ratio) * Math.Log(ratio));
    }

    private static double LengthPenaltyPython(double ratio)
    {
        if (ratio >= 1)
        {
            return 1;
        }

        if (ratio <= 0)
        {
            return 0;
        }

        var beta = -Math.Log(0.5) / Math.Pow(Math.Log(1.5), 2);
        return Math.Exp(-beta * Math.Pow(Math.Log(ratio), 2));
    }

    private static string AsciiLower(string s)
    {
        var chars = s.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (chars[i] is >= 'A' and <= 'Z')
            {
                chars[i] = (char)(chars[i] + 32);
            }
        }

        return new string(chars);
    }

    // Tokens contain no spaces (pymteval's only empty token is the sole token of an empty line), so a space-joined key is unambiguous.
    private static string Key(List<string> tokens, int start, int n) => n == 1 ? tokens[start] : NgramKey.Join(tokens, start, n);

    private static Dictionary<string, int> CountNgrams(List<string> tokens, int n)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i + n <= tokens.Count; i++)
        {
            var key = Key(tokens, i, n);
            result[key] = result.GetValueOrDefault(key) + 1;
        }

        return result;
    }
}
