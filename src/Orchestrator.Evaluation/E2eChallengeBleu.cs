namespace Orchestrator.Evaluation;

/// <summary>
/// The BLEU of the E2E NLG Challenge evaluation scripts (tuetschek/e2e-metrics,
/// <c>metrics/pymteval.py</c> <c>BLEUScore()</c>, used by <c>measure_scores.py</c>): case-insensitive,
/// mteval-v13a-like tokenisation, no smoothing beyond a tiny floor for zero counts, corpus level,
/// result on the 0..1 scale. This is <b>not</b> sacreBLEU; use <see cref="SacreBleu"/> for that.
/// </summary>
public static class E2eChallengeBleu
{
    private const double Tiny = 1e-15;
    private const double Small = 1e-9;

    /// <summary>Corpus BLEU (0..1) of <paramref name="hypotheses"/> against per-hypothesis reference groups.</summary>
    /// <param name="hypotheses">System outputs.</param>
    /// <param name="referencesPerHypothesis">The references of each hypothesis (at least one each).</param>
    /// <param name="maxNgram">Maximum n-gram order (pymteval default 4).</param>
    /// <param name="caseSensitive">pymteval's <c>case_sensitive</c> (default false: tokens are lower-cased).</param>
    /// <param name="smoothing">pymteval's additive <c>smoothing</c> constant (0 for the challenge BLEU, 1 for its sentence BLEU).</param>
    public static double Corpus(
        IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis,
        int maxNgram = 4,
        bool caseSensitive = false,
        double smoothing = 0.0)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referencesPerHypothesis);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNgram, 1);
        if (referencesPerHypothesis.Count != hypotheses.Count)
        {
            throw new ArgumentException(
                $"There are {referencesPerHypothesis.Count} reference groups but {hypotheses.Count} hypotheses.",
                nameof(referencesPerHypothesis));
        }

        var hits = new long[maxNgram];
        var candLens = new long[maxNgram];
        long refLen = 0;

        for (var s = 0; s < hypotheses.Count; s++)
        {
            var hypothesis = hypotheses[s] ?? throw new ArgumentException($"Hypothesis {s} is null.", nameof(hypotheses));
            var group = referencesPerHypothesis[s] ?? throw new ArgumentException($"Reference group {s} is null.", nameof(referencesPerHypothesis));
            if (group.Count == 0)
            {
                throw new ArgumentException($"Segment {s} has no references.", nameof(referencesPerHypothesis));
            }

            var pred = Tokenize(hypothesis);
            var refs = group.Select(r => Tokenize(r ?? throw new ArgumentException($"A reference of segment {s} is null.", nameof(referencesPerHypothesis)))).ToList();
            if (!caseSensitive)
            {
                pred = pred.Select(PythonText.Lower).ToList();
                refs = refs.Select(r => r.Select(PythonText.Lower).ToList()).ToList();
            }

            for (var i = 0; i < maxNgram; i++)
            {
                hits[i] += ComputeHits(i + 1, pred, refs);
                // pymteval adds len(pred) - i even when that is negative.
                candLens[i] += pred.Count - i;
            }

            // Closest reference length; ties → the shorter one (min by (|diff|, len), first wins).
            var closest = refs[0].Count;
            var closestKey = (Math.Abs(closest - pred.Count), closest);
            foreach (var r in refs.Skip(1))
            {
                var key = (Math.Abs(r.Count - pred.Count), r.Count);
                if (key.CompareTo(closestKey) < 0)
                {
                    closestKey = key;
                    closest = r.Count;
                }
            }

            refLen += closest;
        }

        var bp = 1.0;
        if (candLens[0] <= refLen)
        {
            var cand = candLens[0] != 0 ? (double)candLens[0] : 1e-5;
            bp = Math.Exp(1.0 - (refLen / cand));
        }

        var precLogSum = 0.0;
        for (var i = 0; i < maxNgram; i++)
        {
            var nHits = hits[i] + smoothing;
            var nLen = candLens[i] + smoothing;
            nHits = Math.Max(nHits, Tiny);
            nLen = Math.Max(nLen, Small);
            precLogSum += Math.Log(nHits / nLen);
        }

        return bp * Math.Exp((1.0 / maxNgram) * precLogSum);
    }

    /// <summary>
    /// pymteval's tokenizer (its rewrite of the mteval-v13a rules): returns the token list. An empty
    /// or all-whitespace line yields one empty token, as in the original (<c>''.split(' ') == ['']</c>).
    /// </summary>
    public static IReadOnlyList<string> TokenizeToList(string sentence) => Tokenize(sentence);

    private static List<string> Tokenize(string sent)
    {
        ArgumentNullException.ThrowIfNull(sent);
        sent = sent.Replace("<skipped>", string.Empty, StringComparison.Ordinal)
            .Replace("-\n", string.Empty, StringComparison.Ordinal)
            .Replace("\n", " ", StringComparison.Ordinal)
            .Replace("&quot;", "\"", StringComparison.Ordinal)
            .Replace("&amp;", "&", StringComparison.Ordinal)
            .Replace("&lt;", "<", StringComparison.Ordinal)
            .Replace("&gt;", ">", StringComparison.Ordinal);

        // Same four language-dependent passes as 13a; then \s+ → ' ', strip(), split(' ').
        var tokens = PythonText.SplitWhitespace(Tokenizer13a.ApplyV13aRules(" " + sent + " "));
        return tokens.Count == 0 ? [string.Empty] : tokens;
    }

    private static long ComputeHits(int n, List<string> pred, List<List<string>> refs)
    {
        var merged = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var r in refs)
        {
            foreach (var (ngram, count) in CountNgrams(n, r))
            {
                if (!merged.TryGetValue(ngram, out var existing) || count > existing)
                {
                    merged[ngram] = count;
                }
            }
        }

        long hits = 0;
        foreach (var (ngram, count) in CountNgrams(n, pred))
        {
            if (merged.TryGetValue(ngram, out var refCount))
            {
                hits += Math.Min(refCount, count);
            }
        }

        return hits;
    }

    // Tokens contain no whitespace (the only empty token is the sole token of an empty line), so a
    // space-joined key is unambiguous for a fixed n.
    private static Dictionary<string, int> CountNgrams(int n, List<string> tokens)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i + n <= tokens.Count; i++)
        {
            var key = n == 1 ? tokens[i] : NgramKey.Join(tokens, i, n);
            result[key] = result.TryGetValue(key, out var c) ? c + 1 : 1;
        }

        return result;
    }
}
