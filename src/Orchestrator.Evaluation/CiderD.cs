namespace Orchestrator.Evaluation;

/// <summary>How <see cref="CiderD"/> turns texts into tokens.</summary>
public enum CiderTokenization
{
    /// <summary>pycocoevalcap's PTB tokenisation and punctuation removal (<see cref="CocoTokenizer"/>), as in the E2E scripts.</summary>
    Coco,

    /// <summary>The text is already tokenised: split on whitespace (Python <c>str.split()</c>).</summary>
    Whitespace,
}

/// <summary>
/// CIDEr-D (Vedantam et al. 2015) exactly as the MS-COCO caption evaluation code computes it — the copy of
/// pycocoevalcap's <c>cider/cider_scorer.py</c> inside tuetschek/e2e-metrics, whose <c>Cider</c> is the E2E
/// challenge's "CIDEr": n = 1..4, tf-idf vectors with document frequencies taken over the references of the
/// <em>evaluated corpus</em> (so the score depends on the whole corpus, and a corpus of one segment scores 0),
/// clipped (min) hypothesis weights, a Gaussian length penalty with σ = 6 on the difference in the number of
/// <em>bigrams</em> (the code's "length" counts n-grams of index 1, kept as is), the mean over n, the mean over
/// references, ×10, and the mean over segments. Checked against that Python code on the e2e_dev200 vectors
/// (see <c>CiderTests</c>); the tokenisation in <see cref="CiderTokenization.Coco"/> mode is an approximation of
/// CoreNLP's (see <see cref="CocoTokenizer"/>).
/// </summary>
public static class CiderD
{
    private const int MaxN = 4;
    private const double Sigma = 6.0;

    /// <summary>Corpus CIDEr-D and the per-segment scores.</summary>
    public static (double Score, IReadOnlyList<double> Segments) Corpus(
        IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis,
        CiderTokenization tokenization = CiderTokenization.Coco)
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

        IReadOnlyList<string> Tokens(string text) => tokenization == CiderTokenization.Coco ? CocoTokenizer.Tokenize(text) : PythonText.SplitWhitespace(text);

        var groups = new List<string>[hypotheses.Count];
        for (var i = 0; i < hypotheses.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(hypotheses[i], $"hypotheses[{i}]");
            groups[i] = (referencesPerHypothesis[i] ?? []).Where(r => !string.IsNullOrEmpty(r)).ToList();
            if (groups[i].Count == 0)
            {
                throw new ArgumentException($"Segment {i} has no references (all were null or empty).", nameof(referencesPerHypothesis));
            }
        }

        var tests = new Dictionary<string, int>[hypotheses.Count];
        var refs = new List<Dictionary<string, int>>[hypotheses.Count];
        Parallel.For(0, hypotheses.Count, i =>
        {
            tests[i] = Cook(Tokens(hypotheses[i]));
            refs[i] = groups[i].Select(r => Cook(Tokens(r))).ToList();
        });

        // Document frequency: in how many segments' reference sets each n-gram occurs.
        var df = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var group in refs)
        {
            foreach (var ngram in group.SelectMany(r => r.Keys).Distinct(StringComparer.Ordinal))
            {
                df[ngram] = df.GetValueOrDefault(ngram) + 1.0;
            }
        }

        var refLen = Math.Log(hypotheses.Count);
        var scores = new double[hypotheses.Count];
        Parallel.For(0, hypotheses.Count, i =>
        {
            var (vec, norm, length) = ToVector(tests[i], df, refLen);
            var sum = new double[MaxN];
            foreach (var r in refs[i])
            {
                var (vecRef, normRef, lengthRef) = ToVector(r, df, refLen);
                var delta = (double)(length - lengthRef);
                for (var n = 0; n < MaxN; n++)
                {
                    var val = 0.0;
                    foreach (var (ngram, weight) in vec[n])
                    {
                        var refWeight = vecRef[n].GetValueOrDefault(ngram);
                        val += Math.Min(weight, refWeight) * refWeight;
                    }

                    if (norm[n] != 0 && normRef[n] != 0)
                    {
                        val /= norm[n] * normRef[n];
                    }

                    val *= Math.Pow(Math.E, -(delta * delta) / (2 * Sigma * Sigma));
                    sum[n] += val;
                }
            }

            var mean = 0.0;
            for (var n = 0; n < MaxN; n++)
            {
                mean += sum[n];
            }

            scores[i] = mean / MaxN / refs[i].Count * 10.0;
        });

        return (scores.Sum() / scores.Length, scores);
    }

    /// <summary>pycocoevalcap's <c>precook</c>: counts of every 1..4-gram, keyed by the space-joined words.</summary>
    private static Dictionary<string, int> Cook(IReadOnlyList<string> words)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var list = words as List<string> ?? words.ToList();
        for (var k = 1; k <= MaxN; k++)
        {
            for (var i = 0; i + k <= list.Count; i++)
            {
                var key = k == 1 ? list[i] : NgramKey.Join(list, i, k);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }

        return counts;
    }

    /// <summary>pycocoevalcap's <c>counts2vec</c>: tf·idf per order, the vector norms, and the bigram count as "length".</summary>
    private static (Dictionary<string, double>[] Vec, double[] Norm, int Length) ToVector(Dictionary<string, int> counts, Dictionary<string, double> df, double refLen)
    {
        var vec = new Dictionary<string, double>[MaxN];
        for (var n = 0; n < MaxN; n++)
        {
            vec[n] = new Dictionary<string, double>(StringComparer.Ordinal);
        }

        var norm = new double[MaxN];
        var length = 0;
        foreach (var (ngram, tf) in counts)
        {
            var idf = Math.Log(Math.Max(1.0, df.GetValueOrDefault(ngram)));
            var n = Order(ngram) - 1;
            var weight = tf * (refLen - idf);
            vec[n][ngram] = weight;
            norm[n] += Math.Pow(weight, 2);
            if (n == 1)
            {
                length += tf;
            }
        }

        for (var n = 0; n < MaxN; n++)
        {
            norm[n] = Math.Sqrt(norm[n]);
        }

        return (vec, norm, length);
    }

    private static int Order(string ngram)
    {
        var spaces = 0;
        foreach (var c in ngram)
        {
            if (c == ' ')
            {
                spaces++;
            }
        }

        return spaces + 1;
    }
}
