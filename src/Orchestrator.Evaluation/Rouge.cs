using System.Text;

namespace Orchestrator.Evaluation;

/// <summary>Precision, recall and F-measure of one ROUGE metric (0..1), like <c>rouge_score.scoring.Score</c>.</summary>
public readonly record struct RougeScore(double Precision, double Recall, double FMeasure)
{
    /// <summary>rouge_score's <c>scoring.fmeasure</c>: <c>2·p·r/(p+r)</c>, or 0 when <c>p+r</c> is 0.</summary>
    public static double ComputeFMeasure(double precision, double recall) =>
        precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;

    internal static RougeScore FromPrecisionRecall(double precision, double recall) =>
        new(precision, recall, ComputeFMeasure(precision, recall));
}

/// <summary>ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum for one prediction (or their corpus means).</summary>
public sealed record RougeScores(RougeScore Rouge1, RougeScore Rouge2, RougeScore RougeL, RougeScore RougeLsum)
{
    /// <summary>The metric names as rouge_score spells them, in the order of the properties.</summary>
    public static IReadOnlyList<string> MetricNames { get; } = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

    /// <summary>The score of a metric by its rouge_score name (<c>rouge1</c>, <c>rouge2</c>, <c>rougeL</c>, <c>rougeLsum</c>).</summary>
    public RougeScore this[string rougeType] => rougeType switch
    {
        "rouge1" => Rouge1,
        "rouge2" => Rouge2,
        "rougeL" => RougeL,
        "rougeLsum" => RougeLsum,
        _ => throw new ArgumentException($"Unknown ROUGE type '{rougeType}'.", nameof(rougeType)),
    };
}

/// <summary>
/// ROUGE with Google's <c>rouge_score</c> semantics (<c>RougeScorer(["rouge1","rouge2","rougeL","rougeLsum"], use_stemmer)</c>
/// with the default tokenizer): lower-case, every run of characters outside <c>[a-z0-9]</c> is a
/// separator, optional Porter stemming (NLTK, default mode) of tokens longer than 3 characters.
/// ROUGE-Lsum splits both texts on <c>'\n'</c> and uses the summary-level (union) LCS; for
/// single-line texts it equals ROUGE-L. Thread-safe.
/// </summary>
public sealed class RougeScorer
{
    private readonly PorterStemmer? _stemmer;

    /// <summary>Creates a scorer; <paramref name="useStemmer"/> is rouge_score's <c>use_stemmer</c>.</summary>
    public RougeScorer(bool useStemmer = false)
    {
        UseStemmer = useStemmer;
        _stemmer = useStemmer ? new PorterStemmer() : null;
    }

    /// <summary>Whether tokens longer than 3 characters are Porter-stemmed.</summary>
    public bool UseStemmer { get; }

    /// <summary>rouge_score's default tokenizer (<c>tokenize.tokenize(text, stemmer)</c>).</summary>
    public IReadOnlyList<string> Tokenize(string text) => TokenizeCore(text);

    /// <summary>Scores <paramref name="prediction"/> against one <paramref name="target"/> (rouge_score <c>score</c>).</summary>
    public RougeScores Score(string target, string prediction)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(prediction);
        var targetTokens = TokenizeCore(target);
        var predictionTokens = TokenizeCore(prediction);
        return new RougeScores(
            ScoreNgrams(targetTokens, predictionTokens, 1),
            ScoreNgrams(targetTokens, predictionTokens, 2),
            ScoreLcs(targetTokens, predictionTokens),
            ScoreSummaryLevelLcs(SplitSentences(target), SplitSentences(prediction)));
    }

    /// <summary>
    /// rouge_score's <c>score_multi</c>: for each metric separately, the score against the target
    /// with the highest F-measure (the first such target on ties), keeping that target's P/R/F.
    /// </summary>
    public RougeScores ScoreMulti(IReadOnlyList<string> targets, string prediction)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(prediction);
        if (targets.Count == 0)
        {
            throw new ArgumentException("At least one target is required.", nameof(targets));
        }

        var all = targets.Select(t => Score(t, prediction)).ToList();
        return new RougeScores(
            Best(all, s => s.Rouge1),
            Best(all, s => s.Rouge2),
            Best(all, s => s.RougeL),
            Best(all, s => s.RougeLsum));
    }

    private static RougeScore Best(List<RougeScores> all, Func<RougeScores, RougeScore> metric)
    {
        var best = metric(all[0]);
        for (var i = 1; i < all.Count; i++)
        {
            var candidate = metric(all[i]);
            if (candidate.FMeasure > best.FMeasure)
            {
                best = candidate;
            }
        }

        return best;
    }

    private List<string> TokenizeCore(string text)
    {
        ArgumentNullException.ThrowIfNull(text);

        // text.lower(), then [^a-z0-9]+ -> ' ', split on whitespace. Only A-Z, U+212A (KELVIN SIGN → 'k')
        // and U+0130 (→ "i\u0307": an 'i' followed by a separator) lower-case into [a-z0-9].
        var tokens = new List<string>();
        var current = new StringBuilder();
        void Flush()
        {
            if (current.Length > 0)
            {
                tokens.Add(current.ToString());
                current.Clear();
            }
        }

        foreach (var c in text)
        {
            switch (c)
            {
                case >= 'a' and <= 'z' or >= '0' and <= '9':
                    current.Append(c);
                    break;
                case >= 'A' and <= 'Z':
                    current.Append((char)(c + ('a' - 'A')));
                    break;
                case '\u212A':
                    current.Append('k');
                    break;
                case '\u0130':
                    current.Append('i');
                    Flush();
                    break;
                default:
                    Flush();
                    break;
            }
        }

        Flush();

        if (_stemmer is not null)
        {
            for (var i = 0; i < tokens.Count; i++)
            {
                if (tokens[i].Length > 3)
                {
                    tokens[i] = _stemmer.Stem(tokens[i]);
                }
            }

            // rouge_score finally drops tokens that are empty or not [a-z0-9]+.
            tokens.RemoveAll(t => t.Length == 0);
        }

        return tokens;
    }

    private List<List<string>> SplitSentences(string text) =>
        text.Split('\n').Where(s => s.Length > 0).Select(TokenizeCore).ToList();

    private static RougeScore ScoreNgrams(List<string> targetTokens, List<string> predictionTokens, int n)
    {
        var targetNgrams = CountNgrams(targetTokens, n);
        var predictionNgrams = CountNgrams(predictionTokens, n);
        long intersection = 0;
        foreach (var (ngram, count) in targetNgrams)
        {
            if (predictionNgrams.TryGetValue(ngram, out var predicted))
            {
                intersection += Math.Min(count, predicted);
            }
        }

        var targetCount = Math.Max(targetTokens.Count - n + 1, 0);
        var predictionCount = Math.Max(predictionTokens.Count - n + 1, 0);
        var precision = (double)intersection / Math.Max(predictionCount, 1);
        var recall = (double)intersection / Math.Max(targetCount, 1);
        return RougeScore.FromPrecisionRecall(precision, recall);
    }

    private static Dictionary<string, int> CountNgrams(List<string> tokens, int n)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i + n <= tokens.Count; i++)
        {
            var key = n == 1 ? tokens[i] : NgramKey.Join(tokens, i, n);
            result[key] = result.TryGetValue(key, out var c) ? c + 1 : 1;
        }

        return result;
    }

    private static RougeScore ScoreLcs(List<string> targetTokens, List<string> predictionTokens)
    {
        if (targetTokens.Count == 0 || predictionTokens.Count == 0)
        {
            return new RougeScore(0, 0, 0);
        }

        var table = LcsTable(targetTokens, predictionTokens);
        var lcs = table[targetTokens.Count, predictionTokens.Count];
        var precision = (double)lcs / predictionTokens.Count;
        var recall = (double)lcs / targetTokens.Count;
        return RougeScore.FromPrecisionRecall(precision, recall);
    }

    private static int[,] LcsTable(List<string> reference, List<string> candidate)
    {
        var table = new int[reference.Count + 1, candidate.Count + 1];
        for (var i = 1; i <= reference.Count; i++)
        {
            for (var j = 1; j <= candidate.Count; j++)
            {
                table[i, j] = string.Equals(reference[i - 1], candidate[j - 1], StringComparison.Ordinal)
                    ? table[i - 1, j - 1] + 1
                    : Math.Max(table[i - 1, j], table[i, j - 1]);
            }
        }

        return table;
    }

    /// <summary>Indices into <paramref name="reference"/> of one LCS, read back as rouge_score's <c>_backtrack_norec</c> does.</summary>
    private static List<int> LcsIndices(List<string> reference, List<string> candidate)
    {
        var table = LcsTable(reference, candidate);
        var indices = new List<int>();
        int i = reference.Count, j = candidate.Count;
        while (i > 0 && j > 0)
        {
            if (string.Equals(reference[i - 1], candidate[j - 1], StringComparison.Ordinal))
            {
                indices.Add(i - 1);
                i--;
                j--;
            }
            else if (table[i, j - 1] > table[i - 1, j])
            {
                j--;
            }
            else
            {
                i--;
            }
        }

        indices.Reverse();
        return indices;
    }

    /// <summary>Summary-level LCS (ROUGE paper §3.2) with ROUGE-1.5.5's protection against double counting.</summary>
    private static RougeScore ScoreSummaryLevelLcs(List<List<string>> referenceSentences, List<List<string>> candidateSentences)
    {
        if (referenceSentences.Count == 0 || candidateSentences.Count == 0)
        {
            return new RougeScore(0, 0, 0);
        }

        var m = referenceSentences.Sum(s => s.Count);
        var n = candidateSentences.Sum(s => s.Count);
        if (m == 0 || n == 0)
        {
            return new RougeScore(0, 0, 0);
        }

        var referenceCounts = CountTokens(referenceSentences);
        var candidateCounts = CountTokens(candidateSentences);

        var hits = 0;
        foreach (var reference in referenceSentences)
        {
            var union = new SortedSet<int>();
            foreach (var candidate in candidateSentences)
            {
                union.UnionWith(LcsIndices(reference, candidate));
            }

            foreach (var index in union)
            {
                var token = reference[index];
                if (candidateCounts.GetValueOrDefault(token) > 0 && referenceCounts.GetValueOrDefault(token) > 0)
                {
                    hits++;
                    candidateCounts[token]--;
                    referenceCounts[token]--;
                }
            }
        }

        var recall = (double)hits / m;
        var precision = (double)hits / n;
        return RougeScore.FromPrecisionRecall(precision, recall);
    }

    private static Dictionary<string, int> CountTokens(List<List<string>> sentences)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var token in sentences.SelectMany(s => s))
        {
            counts[token] = counts.GetValueOrDefault(token) + 1;
        }

        return counts;
    }
}

/// <summary>Corpus-level ROUGE helpers.</summary>
public static class Rouge
{
    /// <summary>
    /// Mean precision, recall and F-measure per metric over segments, each segment scored with
    /// <see cref="RougeScorer.ScoreMulti"/> (best reference per metric) against its references.
    /// </summary>
    public static RougeScores CorpusMean(
        IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis,
        bool useStemmer = false)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referencesPerHypothesis);
        if (hypotheses.Count == 0)
        {
            throw new ArgumentException("At least one hypothesis is required.", nameof(hypotheses));
        }

        if (referencesPerHypothesis.Count != hypotheses.Count)
        {
            throw new ArgumentException(
                $"There are {referencesPerHypothesis.Count} reference groups but {hypotheses.Count} hypotheses.",
                nameof(referencesPerHypothesis));
        }

        var scorer = new RougeScorer(useStemmer);
        for (var i = 0; i < hypotheses.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(hypotheses[i], $"hypotheses[{i}]");
            if (referencesPerHypothesis[i] is not { Count: > 0 })
            {
                throw new ArgumentException("At least one target is required.", nameof(referencesPerHypothesis));
            }
        }

        // Segments are scored in parallel; the means are then summed in segment order, so the result does not
        // depend on the scheduling.
        var perSegment = new RougeScores[hypotheses.Count];
        Parallel.For(0, hypotheses.Count, i => perSegment[i] = scorer.ScoreMulti(referencesPerHypothesis[i], hypotheses[i]));
        var sums = new double[4, 3];
        for (var i = 0; i < hypotheses.Count; i++)
        {
            var scores = perSegment[i];
            var metrics = new[] { scores.Rouge1, scores.Rouge2, scores.RougeL, scores.RougeLsum };
            for (var k = 0; k < 4; k++)
            {
                sums[k, 0] += metrics[k].Precision;
                sums[k, 1] += metrics[k].Recall;
                sums[k, 2] += metrics[k].FMeasure;
            }
        }

        double count = hypotheses.Count;
        RougeScore Mean(int k) => new(sums[k, 0] / count, sums[k, 1] / count, sums[k, 2] / count);
        return new RougeScores(Mean(0), Mean(1), Mean(2), Mean(3));
    }
}
