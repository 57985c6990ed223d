namespace Orchestrator.Evaluation;

/// <summary>The matching stages METEOR 1.5 offers; this library implements the first two.</summary>
public enum MeteorModule
{
    /// <summary>Identical words.</summary>
    Exact = 0,

    /// <summary>Different words with the same Snowball (Porter2) stem.</summary>
    Stem = 1,
}

/// <summary>How hypotheses and references are prepared before METEOR's own normalisation.</summary>
public enum MeteorPreprocessing
{
    /// <summary>None: the text as given (what the WebNLG 2017 evaluation script feeds <c>meteor-1.5.jar -norm</c>).</summary>
    None,

    /// <summary>
    /// The MS-COCO caption evaluation pipeline the E2E scripts use (pycocoevalcap): PTB tokenisation, lower-casing and
    /// removal of punctuation tokens (<see cref="CocoTokenizer"/>, an approximation of Stanford CoreNLP 3.4.1).
    /// </summary>
    CocoPtb,
}

/// <summary>Settings of <see cref="Meteor"/>; the defaults are METEOR 1.5's English defaults (task <c>rank</c>) with <c>-norm</c>.</summary>
public sealed record MeteorOptions
{
    public static MeteorOptions Default { get; } = new();

    /// <summary>Modules in order; METEOR's default adds synonym and paraphrase stages, which are not available here.</summary>
    public IReadOnlyList<MeteorModule> Modules { get; init; } = [MeteorModule.Exact, MeteorModule.Stem];

    /// <summary>Scoring weight of each module (METEOR 1.5 English: exact 1.0, stem 0.6, synonym 0.8, paraphrase 0.6).</summary>
    public IReadOnlyList<double> ModuleWeights { get; init; } = [1.0, 0.6];

    /// <summary>α, β, γ, δ (METEOR 1.5 English rank task: 0.85, 0.20, 0.60, 0.75).</summary>
    public double Alpha { get; init; } = 0.85;

    public double Beta { get; init; } = 0.20;

    public double Gamma { get; init; } = 0.60;

    public double Delta { get; init; } = 0.75;

    /// <summary>Apply METEOR's <c>-norm</c> tokenisation (<see cref="MeteorNormalizer"/>) before lower-casing.</summary>
    public bool Normalize { get; init; } = true;

    /// <summary>Beam width of the alignment search (METEOR default 40).</summary>
    public int BeamSize { get; init; } = 40;

    public MeteorPreprocessing Preprocessing { get; init; } = MeteorPreprocessing.None;
}

/// <summary>METEOR's sufficient statistics of one segment (or, summed, of a corpus) and the score they give.</summary>
public sealed record MeteorStatistics(
    int TestLength,
    int ReferenceLength,
    int TestFunctionWords,
    int ReferenceFunctionWords,
    IReadOnlyList<int> TestContentMatches,
    IReadOnlyList<int> ReferenceContentMatches,
    IReadOnlyList<int> TestFunctionMatches,
    IReadOnlyList<int> ReferenceFunctionMatches,
    int Chunks,
    double Precision,
    double Recall,
    double FMean,
    double FragmentationPenalty,
    double Score)
{
    public int TestMatches => TestContentMatches.Sum() + TestFunctionMatches.Sum();

    public int ReferenceMatches => ReferenceContentMatches.Sum() + ReferenceFunctionMatches.Sum();
}

/// <summary>
/// METEOR 1.5 (Denkowski &amp; Lavie 2014), reproduced from its Java source (cmu-mtlab/meteor,
/// <c>MeteorScorer</c>, <c>Aligner</c>, <c>MeteorStats</c>) for the <b>exact</b> and <b>stem</b> stages:
/// <c>-norm</c> tokenisation, lower-casing, word matching by Java string hash, the beam-search alignment with its
/// fixed one-to-one matches and its comparator (including the truncation of the weighted match counts to integers
/// and the distance bookkeeping exactly as the Java does them), function-word weighting (δ), the fragmentation
/// penalty, best reference per segment, and the corpus score from summed statistics (as <c>Meteor.java</c> and the
/// pycocoevalcap wrapper compute it). The <b>synonym</b> (WordNet) and <b>paraphrase</b> stages of the default
/// English configuration are not implemented, so scores are those of <c>meteor-1.5.jar -l en -norm -m "exact stem"</c>
/// and are lower than full METEOR. Checked against meteor-1.5 compiled from that source on the E2E vectors
/// (see <c>MeteorTests</c>). Thread-safe.
/// </summary>
public sealed class Meteor
{
    /// <summary>METEOR 1.5's English function words (<c>resources/function/english.words</c>, LGPL).</summary>
    private static readonly HashSet<string> FunctionWords = new(StringComparer.Ordinal)
    {
        "the", ",", ".", "to", "of", "and", "a", "in", "that", "for", "\"", "is", "on", "'s", "it", "with", "was", "as", "said",
        "at", "he", "by", "be", "from", "have", "has", "are", "his", "but", "an", "this", "not", "i", "will", "\u2019", "they",
        ")", "-rrb-", "(", "-lrb-", "who", "their", "had", "we", "which", "were", "been", "more", "or", "s", "its", "would",
        "about", "new", "one", "after", "you", ":", "also", "up", "when", "there", "than", "$", "all", "out", "her", "people",
        "she", "year", "two", "-", "can", "if", "last", "first", "\u201C", "over", "other", "\u201D", "into", "some", "what",
        "so", "--", "no", "time", "years", "could", "?", "'t", "\u2014", "'",
    };

    private readonly SnowballEnglishStemmer _stemmer = new();

    public Meteor(MeteorOptions? options = null)
    {
        Options = options ?? MeteorOptions.Default;
        if (Options.ModuleWeights.Count < Options.Modules.Count)
        {
            throw new ArgumentException("Every module needs a weight.", nameof(options));
        }
    }

    public MeteorOptions Options { get; }

    /// <summary>Corpus METEOR (0..1) of hypotheses against per-hypothesis reference groups (empty references are dropped).</summary>
    public static double Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis, MeteorOptions? options = null) =>
        new Meteor(options).CorpusStatistics(hypotheses, referencesPerHypothesis).Score;

    /// <summary>Summed statistics of a corpus and the corpus score (METEOR's <c>aggStats</c>).</summary>
    public MeteorStatistics CorpusStatistics(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referencesPerHypothesis);
        if (hypotheses.Count != referencesPerHypothesis.Count)
        {
            throw new ArgumentException($"There are {referencesPerHypothesis.Count} reference groups but {hypotheses.Count} hypotheses.", nameof(referencesPerHypothesis));
        }

        for (var i = 0; i < hypotheses.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(hypotheses[i], $"hypotheses[{i}]");
            if (referencesPerHypothesis[i] is null || !referencesPerHypothesis[i].Any(r => !string.IsNullOrEmpty(r)))
            {
                throw new ArgumentException($"Segment {i} has no references (all were null or empty).", nameof(referencesPerHypothesis));
            }
        }

        var segments = new MeteorStatistics[hypotheses.Count];
        Parallel.For(0, hypotheses.Count, i => segments[i] = Segment(hypotheses[i], referencesPerHypothesis[i]));
        return Aggregate(segments);
    }

    /// <summary>Segment METEOR: the reference with the highest score (the first on ties) and its statistics.</summary>
    public MeteorStatistics Segment(string hypothesis, IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(references);
        var refs = references.Where(r => !string.IsNullOrEmpty(r)).ToList();
        if (refs.Count == 0)
        {
            throw new ArgumentException("A segment needs at least one non-empty reference.", nameof(references));
        }

        var test = Prepare(hypothesis);
        MeteorStatistics? best = null;
        foreach (var reference in refs)
        {
            var stats = Align(test, Prepare(reference));
            if (best is null || stats.Score > best.Score)
            {
                best = stats;
            }
        }

        return best!;
    }

    /// <summary>The tokens METEOR aligns for one text (after the options' preprocessing, <c>-norm</c> and lower-casing).</summary>
    public IReadOnlyList<string> Tokenize(string text) => Prepare(text);

    /// <summary>METEOR's <c>MeteorStats.addStats</c> over segments, then the score of the sums.</summary>
    public MeteorStatistics Aggregate(IEnumerable<MeteorStatistics> segments)
    {
        var modules = Options.Modules.Count;
        int tl = 0, rl = 0, tf = 0, rf = 0, chunks = 0;
        var tc = new int[modules];
        var rc = new int[modules];
        var tfm = new int[modules];
        var rfm = new int[modules];
        foreach (var s in segments)
        {
            tl += s.TestLength;
            rl += s.ReferenceLength;
            tf += s.TestFunctionWords;
            rf += s.ReferenceFunctionWords;
            for (var m = 0; m < modules; m++)
            {
                tc[m] += s.TestContentMatches[m];
                rc[m] += s.ReferenceContentMatches[m];
                tfm[m] += s.TestFunctionMatches[m];
                rfm[m] += s.ReferenceFunctionMatches[m];
            }

            // A segment matched perfectly in one chunk adds no chunk (so a perfect corpus has no fragmentation).
            if (!(s.TestMatches == s.TestLength && s.ReferenceMatches == s.ReferenceLength && s.Chunks == 1))
            {
                chunks += s.Chunks;
            }
        }

        return Compute(tl, rl, tf, rf, tc, rc, tfm, rfm, chunks);
    }

    private List<string> Prepare(string text)
    {
        if (Options.Preprocessing == MeteorPreprocessing.CocoPtb)
        {
            text = string.Join(' ', CocoTokenizer.Tokenize(text));
        }

        if (Options.Normalize)
        {
            text = MeteorNormalizer.Normalize(text);
        }

        return MeteorNormalizer.JavaTokens(JavaText.ToLower(text));
    }

    private MeteorStatistics Align(List<string> words1, List<string> words2)
    {
        var modules = Options.Modules;
        var keys1 = words1.Select(JavaText.HashCode).ToArray();
        var keys2 = words2.Select(JavaText.HashCode).ToArray();

        // Candidate matches per reference position (METEOR's Stage).
        var matches = new List<Match>[words2.Count];
        for (var j = 0; j < matches.Length; j++)
        {
            matches[j] = [];
        }

        var coverage1 = new int[words1.Count];
        var coverage2 = new int[words2.Count];
        var modulesUsed = words1.Count == words2.Count && keys1.AsSpan().SequenceEqual(keys2) ? 1 : modules.Count;
        for (var stage = 0; stage < modulesUsed; stage++)
        {
            int[]? stems1 = null, stems2 = null;
            if (modules[stage] == MeteorModule.Stem)
            {
                stems1 = words1.Select(w => JavaText.HashCode(_stemmer.Stem(w))).ToArray();
                stems2 = words2.Select(w => JavaText.HashCode(_stemmer.Stem(w))).ToArray();
            }

            for (var j = 0; j < keys2.Length; j++)
            {
                for (var i = 0; i < keys1.Length; i++)
                {
                    var hit = modules[stage] == MeteorModule.Exact
                        ? keys1[i] == keys2[j]
                        : stems1![i] == stems2![j] && keys1[i] != keys2[j];
                    if (hit)
                    {
                        matches[j].Add(new Match(j, i, stage));
                        coverage1[i]++;
                        coverage2[j]++;
                    }
                }
            }
        }

        // One-to-one matches that overlap nothing are fixed before the search.
        var start = new Path(words1.Count, words2.Count);
        for (var j = 0; j < matches.Length; j++)
        {
            if (matches[j].Count == 1)
            {
                var m = matches[j][0];
                if (coverage2[m.Start] == 1 && coverage1[m.MatchStart] == 1)
                {
                    start.Matches[j] = m;
                    start.Used2[m.Start] = true;
                    start.Used1[m.MatchStart] = true;
                }
            }
        }

        var best = Resolve(matches, start);

        var isFunction1 = words1.Select(w => FunctionWords.Contains(JavaText.ToLower(w))).ToArray();
        var isFunction2 = words2.Select(w => FunctionWords.Contains(JavaText.ToLower(w))).ToArray();
        var tc = new int[modules.Count];
        var rc = new int[modules.Count];
        var tfm = new int[modules.Count];
        var rfm = new int[modules.Count];
        foreach (var m in best.Matches)
        {
            if (m is null)
            {
                continue;
            }

            if (isFunction1[m.MatchStart])
            {
                tfm[m.Module]++;
            }
            else
            {
                tc[m.Module]++;
            }

            if (isFunction2[m.Start])
            {
                rfm[m.Module]++;
            }
            else
            {
                rc[m.Module]++;
            }
        }

        var chunks = CountChunks(best.Matches);
        return Compute(words1.Count, words2.Count, isFunction1.Count(f => f), isFunction2.Count(f => f), tc, rc, tfm, rfm, chunks);
    }

    /// <summary>METEOR's <c>Aligner.resolve</c>: a left-to-right beam search over reference positions.</summary>
    private Path Resolve(List<Match>[] candidates, Path start)
    {
        // Weights METEOR uses to rank partial alignments (exact 1.0, everything else 0.5), not the scoring weights.
        var searchWeights = Options.Modules.Select(m => m == MeteorModule.Exact ? 1.0 : 0.5).ToArray();
        var next = new List<Path> { start };
        List<Path> paths;
        for (var current = 0; current <= candidates.Length; current++)
        {
            paths = SortStable(next);
            next = [];
            for (var rank = 0; rank < Options.BeamSize && rank < paths.Count; rank++)
            {
                var path = paths[rank];
                path.Materialize();
                if (current == candidates.Length)
                {
                    if (path.LastMatchEnd != -1)
                    {
                        path.Chunks++;
                    }

                    next.Add(path);
                    continue;
                }

                if (path.Used2[current])
                {
                    if (current < path.Index)
                    {
                        next.Add(path);
                    }
                    else if (path.Matches[path.Index] is { } fixedMatch)
                    {
                        path.Extend(fixedMatch, searchWeights);
                        path.Distance += Math.Abs(fixedMatch.Start - fixedMatch.MatchStart);
                        next.Add(path);
                    }

                    continue;
                }

                foreach (var m in candidates[current])
                {
                    if (path.Used2[m.Start] || path.Used1[m.MatchStart])
                    {
                        continue;
                    }

                    // The new path shares its parent's arrays until it survives the beam (copy on demand).
                    var extended = path.Child(m, current);
                    extended.Extend(m, searchWeights);

                    // METEOR adds this distance to the path being extended, not to the new one (kept as is).
                    path.Distance += Math.Abs(m.Start - m.MatchStart);
                    next.Add(extended);
                }

                if (path.LastMatchEnd != -1)
                {
                    path.Chunks++;
                    path.LastMatchEnd = -1;
                }

                path.Index++;
                next.Add(path);
            }

            if (next.Count == 0)
            {
                next.Add(paths[0]);
            }
        }

        var best = SortStable(next)[0];
        best.Materialize();
        return best;
    }

    private static List<Path> SortStable(List<Path> paths) => paths.Order(PathComparer.Instance).ToList();

    private static int CountChunks(Match?[] matches)
    {
        var chunks = 0;
        var index = 0;
        var lastMatchEnd = -1;
        while (index < matches.Length)
        {
            var m = matches[index];
            if (m is null)
            {
                if (lastMatchEnd != -1)
                {
                    chunks++;
                    lastMatchEnd = -1;
                }

                index++;
            }
            else
            {
                if (lastMatchEnd != -1 && m.MatchStart != lastMatchEnd)
                {
                    chunks++;
                }

                index = m.Start + 1;
                lastMatchEnd = m.MatchStart + 1;
            }
        }

        return lastMatchEnd != -1 ? chunks + 1 : chunks;
    }

    /// <summary>METEOR's <c>computeMetrics</c>, in the same order of floating-point operations.</summary>
    private MeteorStatistics Compute(int testLength, int referenceLength, int testFunction, int referenceFunction,
        int[] testContent, int[] referenceContent, int[] testFunctionMatches, int[] referenceFunctionMatches, int chunks)
    {
        var o = Options;
        var delta = o.Delta;
        var testWeightedLength = (delta * (testLength - testFunction)) + ((1.0 - delta) * testFunction);
        var referenceWeightedLength = (delta * (referenceLength - referenceFunction)) + ((1.0 - delta) * referenceFunction);
        double testWeighted = 0, referenceWeighted = 0;
        for (var i = 0; i < o.Modules.Count; i++)
        {
            testWeighted += testContent[i] * o.ModuleWeights[i] * delta;
        }

        for (var i = 0; i < o.Modules.Count; i++)
        {
            referenceWeighted += referenceContent[i] * o.ModuleWeights[i] * delta;
        }

        for (var i = 0; i < o.Modules.Count; i++)
        {
            testWeighted += testFunctionMatches[i] * o.ModuleWeights[i] * (1.0 - delta);
        }

        for (var i = 0; i < o.Modules.Count; i++)
        {
            referenceWeighted += referenceFunctionMatches[i] * o.ModuleWeights[i] * (1.0 - delta);
        }

        var precision = testWeighted / testWeightedLength;
        var recall = referenceWeighted / referenceWeightedLength;
        var fMean = 1.0 / (((1.0 - o.Alpha) / precision) + (o.Alpha / recall));
        var testMatches = testContent.Sum() + testFunctionMatches.Sum();
        var referenceMatches = referenceContent.Sum() + referenceFunctionMatches.Sum();
        var frag = testMatches == testLength && referenceMatches == referenceLength && chunks == 1
            ? 0.0
            : chunks / ((double)(testMatches + referenceMatches) / 2);
        var penalty = o.Gamma * Math.Pow(frag, o.Beta);
        var score = fMean * (1.0 - penalty);
        score = double.IsNaN(score) ? 0.0 : Math.Max(score, 0.0);
        return new MeteorStatistics(testLength, referenceLength, testFunction, referenceFunction,
            testContent, referenceContent, testFunctionMatches, referenceFunctionMatches, chunks,
            precision, recall, fMean, penalty, score);
    }

    /// <summary>A one-word match: reference position <see cref="Start"/>, hypothesis position <see cref="MatchStart"/>.</summary>
    private sealed record Match(int Start, int MatchStart, int Module);

    private sealed class Path
    {
        private Match? _pendingMatch;
        private int _pendingPosition;

        public Path(int testLength, int referenceLength)
        {
            Matches = new Match?[referenceLength];
            Used1 = new bool[testLength];
            Used2 = new bool[referenceLength];
        }

        private Path(Path parent, Match match, int position)
        {
            // A path's arrays never change once it has children, so a child may share them until it is used.
            Matches = parent.Matches;
            Used1 = parent.Used1;
            Used2 = parent.Used2;
            _pendingMatch = match;
            _pendingPosition = position;
            Matches1 = parent.Matches1;
            Matches2 = parent.Matches2;
            Chunks = parent.Chunks;
            Index = parent.Index;
            LastMatchEnd = parent.LastMatchEnd;
            Distance = parent.Distance;
        }

        public Match?[] Matches { get; private set; }

        public bool[] Used1 { get; private set; }

        public bool[] Used2 { get; private set; }

        // Java ints: "matches1 += length * weight" truncates the weighted sum back to an int.
        public int Matches1 { get; set; }

        public int Matches2 { get; set; }

        public int Chunks { get; set; }

        public int Index { get; set; }

        public int LastMatchEnd { get; set; } = -1;

        public int Distance { get; set; }

        /// <summary>The path extended with <paramref name="match"/> at reference position <paramref name="position"/> (arrays shared until <see cref="Materialize"/>).</summary>
        public Path Child(Match match, int position) => new(this, match, position);

        /// <summary>Gives the path its own arrays with its pending match applied (METEOR copies them eagerly; the result is the same).</summary>
        public void Materialize()
        {
            if (_pendingMatch is not { } m)
            {
                return;
            }

            Matches = (Match?[])Matches.Clone();
            Used1 = (bool[])Used1.Clone();
            Used2 = (bool[])Used2.Clone();
            Used2[m.Start] = true;
            Used1[m.MatchStart] = true;
            Matches[_pendingPosition] = m;
            _pendingMatch = null;
        }

        public void Extend(Match m, double[] weights)
        {
            Matches1 = (int)(Matches1 + (1 * weights[m.Module]));
            Matches2 = (int)(Matches2 + (1 * weights[m.Module]));
            if (LastMatchEnd != -1 && m.MatchStart != LastMatchEnd)
            {
                Chunks++;
            }

            Index = m.Start + 1;
            LastMatchEnd = m.MatchStart + 1;
        }
    }

    /// <summary>METEOR's <c>PARTIAL_COMPARE_TOTAL</c>: more (search-weighted) matches, then fewer chunks, then less distance.</summary>
    private sealed class PathComparer : IComparer<Path>
    {
        public static readonly PathComparer Instance = new();

        public int Compare(Path? x, Path? y)
        {
            var matchDiff = (y!.Matches1 + y.Matches2) - (x!.Matches1 + x.Matches2);
            if (matchDiff != 0)
            {
                return matchDiff > 0 ? 1 : -1;
            }

            var chunkDiff = x.Chunks - y.Chunks;
            return chunkDiff != 0 ? chunkDiff : x.Distance - y.Distance;
        }
    }
}
