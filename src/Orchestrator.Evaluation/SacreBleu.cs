namespace Orchestrator.Evaluation;

/// <summary>
/// BLEU computed the way sacreBLEU 2.6.0 computes it (<c>sacrebleu.metrics.BLEU</c>):
/// 13a tokenisation, mixed case, exponential smoothing, closest reference length (ties → shorter),
/// statistics summed over segments, max order 4.
/// </summary>
public static class SacreBleu
{
    /// <summary>The sacreBLEU version whose behaviour (and signature) this reproduces.</summary>
    public const string Version = "2.6.0";

    /// <summary>
    /// Corpus BLEU with sacreBLEU's defaults. <paramref name="referenceStreams"/> is a list of
    /// reference "documents", each as long as <paramref name="hypotheses"/> (sacreBLEU's layout).
    /// An empty string (or null) reference is padding and is dropped for that segment, so segments
    /// may have different numbers of references (the signature then says <c>nrefs:var</c>).
    /// </summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referenceStreams) =>
        Corpus(hypotheses, referenceStreams, SacreBleuOptions.Default);

    /// <summary>Corpus BLEU over reference streams with explicit settings.</summary>
    public static BleuScore Corpus(
        IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> referenceStreams,
        SacreBleuOptions options)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referenceStreams);
        ArgumentNullException.ThrowIfNull(options);
        if (referenceStreams.Count == 0)
        {
            throw new ArgumentException("At least one reference stream is required.", nameof(referenceStreams));
        }

        for (var k = 0; k < referenceStreams.Count; k++)
        {
            var stream = referenceStreams[k] ?? throw new ArgumentException($"Reference stream {k} is null.", nameof(referenceStreams));
            if (stream.Count != hypotheses.Count)
            {
                throw new ArgumentException(
                    $"Reference stream {k} has {stream.Count} lines but there are {hypotheses.Count} hypotheses.",
                    nameof(referenceStreams));
            }
        }

        return CorpusCore(hypotheses, i => referenceStreams.Select(s => (string?)s[i]), options);
    }

    /// <summary>
    /// Corpus BLEU with sacreBLEU's defaults, references grouped per hypothesis
    /// (<c>referencesPerHypothesis[i]</c> are the references of <c>hypotheses[i]</c>; groups may differ in size).
    /// Equivalent to <see cref="Corpus(IReadOnlyList{string}, IReadOnlyList{IReadOnlyList{string}})"/>
    /// with the groups transposed into streams padded with absent entries.
    /// </summary>
    public static BleuScore CorpusFromGroups(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis) =>
        CorpusFromGroups(hypotheses, referencesPerHypothesis, SacreBleuOptions.Default);

    /// <summary>Corpus BLEU over per-hypothesis reference groups with explicit settings.</summary>
    public static BleuScore CorpusFromGroups(
        IReadOnlyList<string> hypotheses,
        IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis,
        SacreBleuOptions options)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referencesPerHypothesis);
        ArgumentNullException.ThrowIfNull(options);
        if (referencesPerHypothesis.Count != hypotheses.Count)
        {
            throw new ArgumentException(
                $"There are {referencesPerHypothesis.Count} reference groups but {hypotheses.Count} hypotheses.",
                nameof(referencesPerHypothesis));
        }

        return CorpusCore(
            hypotheses,
            i => referencesPerHypothesis[i] ?? throw new ArgumentException($"Reference group {i} is null.", nameof(referencesPerHypothesis)),
            options);
    }

    /// <summary>
    /// Sentence BLEU with sacreBLEU's <c>sentence_bleu</c> defaults (exp smoothing, effective order on).
    /// </summary>
    public static BleuScore Sentence(string hypothesis, IReadOnlyList<string> references) =>
        Sentence(hypothesis, references, SacreBleuOptions.SentenceDefault);

    /// <summary>Sentence BLEU with explicit settings.</summary>
    public static BleuScore Sentence(string hypothesis, IReadOnlyList<string> references, SacreBleuOptions options)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(references);
        ArgumentNullException.ThrowIfNull(options);
        return CorpusCore([hypothesis], _ => references, options);
    }

    /// <summary>
    /// The sacreBLEU signature string for the given settings and number of references per segment
    /// (<c>-1</c> for a varying number, printed as <c>var</c>).
    /// </summary>
    public static string Signature(int numberOfReferences, SacreBleuOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var nrefs = numberOfReferences == -1 ? "var" : numberOfReferences.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return $"nrefs:{nrefs}|case:{(options.Lowercase ? "lc" : "mixed")}|eff:{(options.EffectiveOrder ? "yes" : "no")}" +
               $"|tok:{options.TokenizerSignature}|smooth:{options.SmoothingSignature}|version:{Version}";
    }

    /// <summary>
    /// Applies sacreBLEU's per-segment pre-processing: optional lower-casing, <c>rstrip()</c>, then the tokenizer.
    /// </summary>
    public static string Preprocess(string segment, SacreBleuOptions options)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Lowercase)
        {
            segment = PythonText.Lower(segment);
        }

        segment = PythonText.RStrip(segment);
        return options.Tokenization switch
        {
            BleuTokenization.V13a => Tokenizer13a.Tokenize(segment),
            BleuTokenization.None => segment,
            _ => throw new InvalidOperationException($"Unknown tokenization {options.Tokenization}."),
        };
    }

    /// <summary>
    /// sacreBLEU's <c>BLEU.compute_bleu</c>: the score from summed sufficient statistics.
    /// </summary>
    public static BleuScore ComputeFromStatistics(
        IReadOnlyList<int> counts,
        IReadOnlyList<int> totals,
        int sysLen,
        int refLen,
        SacreBleuOptions options,
        string signature)
    {
        ArgumentNullException.ThrowIfNull(counts);
        ArgumentNullException.ThrowIfNull(totals);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(signature);
        var order = options.MaxNgramOrder;
        if (counts.Count != order || totals.Count != order)
        {
            throw new ArgumentException($"Expected {order} counts and totals.");
        }

        var countsCopy = counts.ToArray();
        var totalsCopy = totals.ToArray();

        var bp = 1.0;
        if (sysLen < refLen)
        {
            bp = sysLen > 0 ? Math.Exp(1.0 - ((double)refLen / sysLen)) : 0.0;
        }

        var precisions = new double[order];

        // Early stop if there are no matches (sacreBLEU #141).
        if (countsCopy.All(c => c == 0))
        {
            return new BleuScore(0.0, countsCopy, totalsCopy, precisions, bp, sysLen, refLen, signature);
        }

        var smoothValue = options.EffectiveSmoothValue;
        var smoothMteval = 1.0;
        var effectiveOrder = order;
        for (var n = 1; n <= order; n++)
        {
            double correct = countsCopy[n - 1];
            double total = totalsCopy[n - 1];
            if (options.Smoothing == BleuSmoothing.AddK && n > 1)
            {
                correct += smoothValue;
                total += smoothValue;
            }

            if (total == 0)
            {
                break;
            }

            if (options.EffectiveOrder)
            {
                effectiveOrder = n;
            }

            if (correct == 0)
            {
                if (options.Smoothing == BleuSmoothing.Exp)
                {
                    smoothMteval *= 2;
                    precisions[n - 1] = 100.0 / (smoothMteval * total);
                }
                else if (options.Smoothing == BleuSmoothing.Floor)
                {
                    precisions[n - 1] = 100.0 * smoothValue / total;
                }
            }
            else
            {
                precisions[n - 1] = 100.0 * correct / total;
            }
        }

        // sum(my_log(p) for p in precisions[:eff_order]) / eff_order, summed left to right.
        var logSum = 0.0;
        for (var n = 0; n < effectiveOrder; n++)
        {
            logSum += precisions[n] == 0.0 ? -9999999999.0 : Math.Log(precisions[n]);
        }

        var score = bp * Math.Exp(logSum / effectiveOrder);
        return new BleuScore(score, countsCopy, totalsCopy, precisions, bp, sysLen, refLen, signature);
    }

    private static BleuScore CorpusCore(
        IReadOnlyList<string> hypotheses,
        Func<int, IEnumerable<string?>> referencesOf,
        SacreBleuOptions options)
    {
        if (hypotheses.Count == 0)
        {
            throw new ArgumentException("At least one hypothesis is required.", nameof(hypotheses));
        }

        if (options.MaxNgramOrder < 1)
        {
            throw new ArgumentException("MaxNgramOrder must be at least 1.", nameof(options));
        }

        // Check every segment first (so errors are plain ArgumentExceptions), then count in parallel: the
        // statistics are integers, so the sums do not depend on the order.
        var references = new List<string>[hypotheses.Count];
        for (var i = 0; i < hypotheses.Count; i++)
        {
            _ = hypotheses[i] ?? throw new ArgumentException($"Hypothesis {i} is null.", nameof(hypotheses));
            references[i] = referencesOf(i)
                .Where(r => r is not null && !(options.DropEmptyReferences && r.Length == 0))
                .Select(r => r!)
                .ToList();
            if (references[i].Count == 0)
            {
                throw new ArgumentException(
                    $"Segment {i} has no references (all were null or empty).", nameof(hypotheses));
            }
        }

        var order = options.MaxNgramOrder;
        var stats = new SegmentStatistics[hypotheses.Count];
        if (hypotheses.Count >= 64)
        {
            Parallel.For(0, hypotheses.Count, i => stats[i] = SegmentStats(hypotheses[i], references[i], options));
        }
        else
        {
            for (var i = 0; i < hypotheses.Count; i++)
            {
                stats[i] = SegmentStats(hypotheses[i], references[i], options);
            }
        }

        var counts = new int[order];
        var totals = new int[order];
        var sysLen = 0;
        var refLen = 0;
        var referenceCounts = new HashSet<int>();
        for (var i = 0; i < stats.Length; i++)
        {
            for (var n = 0; n < order; n++)
            {
                counts[n] += stats[i].Counts[n];
                totals[n] += stats[i].Totals[n];
            }

            sysLen += stats[i].SysLen;
            refLen += stats[i].RefLen;
            referenceCounts.Add(references[i].Count);
        }

        var nrefs = referenceCounts.Count == 1 ? referenceCounts.First() : -1;
        return ComputeFromStatistics(counts, totals, sysLen, refLen, options, Signature(nrefs, options));
    }

    private readonly record struct SegmentStatistics(int[] Counts, int[] Totals, int SysLen, int RefLen);

    /// <summary>
    /// One segment's sufficient statistics: for every hypothesis n-gram, its count clipped by the largest count in any
    /// one reference; the hypothesis length; the closest reference length. N-grams are keyed by the segment-local ids
    /// of their words (16 bits each, so up to 4-grams fit a 64-bit key); segments with more distinct words or higher
    /// orders use space-joined string keys. Both give the same counts.
    /// </summary>
    private static SegmentStatistics SegmentStats(string hypothesis, List<string> references, SacreBleuOptions options)
    {
        var order = options.MaxNgramOrder;
        var counts = new int[order];
        var totals = new int[order];

        // Words become segment-local ids without allocating a string per token (spans looked up in the id table).
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var words = new List<string> { "" };
        var lookup = ids.GetAlternateLookup<ReadOnlySpan<char>>();
        int[] ToIds(string text)
        {
            var tokenized = Preprocess(text, options).AsSpan();
            var result = new List<int>(tokenized.Length / 4 + 1);
            var i = 0;
            while (i < tokenized.Length)
            {
                while (i < tokenized.Length && PythonText.IsSpace(tokenized[i]))
                {
                    i++;
                }

                var start = i;
                while (i < tokenized.Length && !PythonText.IsSpace(tokenized[i]))
                {
                    i++;
                }

                if (i > start)
                {
                    var token = tokenized[start..i];
                    if (!lookup.TryGetValue(token, out var id))
                    {
                        id = ids.Count + 1;
                        var word = token.ToString();
                        ids[word] = id;
                        words.Add(word);
                    }

                    result.Add(id);
                }
            }

            return [.. result];
        }

        var hypIds = ToIds(hypothesis);
        var refIds = references.Select(ToIds).ToList();
        var refLengths = refIds.Select(r => r.Length).ToList();
        if (order <= 4 && ids.Count < ushort.MaxValue)
        {
            var maxRef = new Dictionary<ulong, int>();
            var local = new Dictionary<ulong, int>();
            foreach (var r in refIds)
            {
                local.Clear();
                CountIdNgrams(r, order, local);
                foreach (var (key, c) in local)
                {
                    if (!maxRef.TryGetValue(key, out var existing) || c > existing)
                    {
                        maxRef[key] = c;
                    }
                }
            }

            local.Clear();
            CountIdNgrams(hypIds, order, local);
            foreach (var (key, c) in local)
            {
                var n = IdNgramOrder(key) - 1;
                totals[n] += c;
                if (maxRef.TryGetValue(key, out var refCount))
                {
                    counts[n] += Math.Min(c, refCount);
                }
            }
        }
        else
        {
            List<string> Words(int[] tokenIds) => tokenIds.Select(id => words[id]).ToList();
            var maxRefCounts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var r in refIds)
            {
                foreach (var (ngram, count) in CountNgrams(Words(r), order))
                {
                    if (!maxRefCounts.TryGetValue(ngram, out var existing) || count > existing)
                    {
                        maxRefCounts[ngram] = count;
                    }
                }
            }

            foreach (var (ngram, count) in CountNgrams(Words(hypIds), order))
            {
                var n = NgramOrder(ngram) - 1;
                totals[n] += count;
                if (maxRefCounts.TryGetValue(ngram, out var refCount))
                {
                    counts[n] += Math.Min(count, refCount);
                }
            }
        }

        return new SegmentStatistics(counts, totals, hypIds.Length, ClosestReferenceLength(hypIds.Length, refLengths));
    }

    // An n-gram of ids (each 1..65534) packed 16 bits per word; the number of non-zero groups is its order.
    private static void CountIdNgrams(int[] ids, int maxOrder, Dictionary<ulong, int> counts)
    {
        for (var i = 0; i < ids.Length; i++)
        {
            ulong key = 0;
            for (var n = 0; n < maxOrder && i + n < ids.Length; n++)
            {
                key |= (ulong)ids[i + n] << (16 * n);
                counts[key] = counts.TryGetValue(key, out var c) ? c + 1 : 1;
            }
        }
    }

    private static int IdNgramOrder(ulong key)
    {
        var n = 0;
        while (key != 0)
        {
            n++;
            key >>= 16;
        }

        return n;
    }

    /// <summary>Closest reference length; on a tie the shorter reference wins (sacreBLEU <c>_get_closest_ref_len</c>).</summary>
    internal static int ClosestReferenceLength(int hypLength, IReadOnlyList<int> referenceLengths)
    {
        int closestDiff = -1, closestLen = -1;
        foreach (var len in referenceLengths)
        {
            var diff = Math.Abs(hypLength - len);
            if (closestDiff == -1 || diff < closestDiff)
            {
                closestDiff = diff;
                closestLen = len;
            }
            else if (diff == closestDiff && len < closestLen)
            {
                closestLen = len;
            }
        }

        return closestLen;
    }

    // Tokens never contain whitespace, so joining with a single space identifies an n-gram uniquely.
    private static Dictionary<string, int> CountNgrams(List<string> tokens, int maxOrder)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var n = 1; n <= maxOrder; n++)
        {
            for (var i = 0; i + n <= tokens.Count; i++)
            {
                var key = n == 1 ? tokens[i] : NgramKey.Join(tokens, i, n);
                result[key] = result.TryGetValue(key, out var c) ? c + 1 : 1;
            }
        }

        return result;
    }

    private static int NgramOrder(string ngram)
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
