using System.Text.RegularExpressions;

namespace Orchestrator.Evaluation;

/// <summary>Settings of <see cref="Ter"/>; the defaults are tercom's (case-insensitive, no normalisation, beam 20, shift distance 50).</summary>
public sealed record TerOptions
{
    public static TerOptions Default { get; } = new();

    /// <summary>tercom <c>-s</c>: keep case (default: lower-case both sides).</summary>
    public bool CaseSensitive { get; init; }

    /// <summary>tercom <c>-N</c>: mteval-style tokenisation of punctuation before scoring.</summary>
    public bool Normalize { get; init; }

    /// <summary>tercom <c>-P</c>: remove the punctuation <c>. , ? : ; ! " ( )</c>.</summary>
    public bool NoPunctuation { get; init; }

    /// <summary>tercom <c>-b</c>: beam width of the edit-distance search.</summary>
    public int BeamWidth { get; init; } = 20;

    /// <summary>tercom <c>-d</c>: maximum distance of a shift in words.</summary>
    public int MaxShiftDistance { get; init; } = 50;
}

/// <summary>TER of one segment against its best reference: edits, average reference length, and the shifts made.</summary>
public sealed record TerSegment(double Edits, double ReferenceWords, int Shifts)
{
    /// <summary>tercom's segment score: edits / average reference length (1 when there are edits but no reference words).</summary>
    public double Score => ReferenceWords <= 0 ? (Edits > 0 ? 1.0 : 0.0) : Edits / ReferenceWords;
}

/// <summary>Corpus TER: total edits over total (average) reference words, and the per-segment results.</summary>
public sealed record TerScore(double Edits, double ReferenceWords, IReadOnlyList<TerSegment> Segments)
{
    /// <summary>TER as a fraction (tercom's "Total TER"); multiply by 100 for sacreBLEU's scale.</summary>
    public double Score => ReferenceWords <= 0 ? (Edits > 0 ? 1.0 : 0.0) : Edits / ReferenceWords;
}

/// <summary>
/// Translation Edit Rate (Snover et al. 2006) as tercom 0.7.25 computes it (the TER of the WebNLG 2017 challenge
/// and of Li &amp; Liang 2021), reproduced from tercom's Java source (jhclark/tercom 0.8.0, the LGPL release of
/// Snover's 0.7.25 code, <c>ter.core.TerScorer</c>): the beam-limited edit distance with its pruning exactly as
/// written, greedy block shifts of up to 10 words and at most 50 positions chosen by the same candidate rules and
/// tie-breaking, shift cost 1, several references → the one with fewest edits, divided by the <em>average</em>
/// reference length; corpus TER = total edits / total average reference length. Empty hypotheses and references
/// follow tercom's <c>TERnullstr</c>. Checked against tercom compiled from that source on the e2e_dev200 vectors
/// (see <c>TerTests</c>). Thread-safe.
/// </summary>
public static partial class Ter
{
    private const int MaxShiftSize = 10;
    private const double Infinity = 999999.0;

    /// <summary>Corpus TER of hypotheses against per-hypothesis reference groups (empty reference strings are dropped).</summary>
    public static TerScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> referencesPerHypothesis, TerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(referencesPerHypothesis);
        if (hypotheses.Count != referencesPerHypothesis.Count)
        {
            throw new ArgumentException($"There are {referencesPerHypothesis.Count} reference groups but {hypotheses.Count} hypotheses.", nameof(referencesPerHypothesis));
        }

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

        var o = options ?? TerOptions.Default;
        var segments = new TerSegment[hypotheses.Count];
        Parallel.For(0, hypotheses.Count, i => segments[i] = Segment(hypotheses[i], groups[i], o));
        double edits = 0, words = 0;
        foreach (var s in segments)
        {
            edits += s.Edits;
            words += s.ReferenceWords;
        }

        return new TerScore(edits, words, segments);
    }

    /// <summary>tercom's <c>score_all_refs</c>: the reference with the fewest edits (the first on ties), average reference length.</summary>
    public static TerSegment Segment(string hypothesis, IReadOnlyList<string> references, TerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(references);
        if (references.Count == 0)
        {
            throw new ArgumentException("At least one reference is required.", nameof(references));
        }

        var o = options ?? TerOptions.Default;
        TerSegment? best = null;
        var totalWords = 0.0;
        foreach (var reference in references)
        {
            var result = Pair(hypothesis, reference, o);
            if (best is null || best.Edits > result.Edits)
            {
                best = result;
            }

            totalWords += result.ReferenceWords;
        }

        return best! with { ReferenceWords = totalWords / references.Count };
    }

    /// <summary>The tokens tercom scores for one text (after case folding and the options' normalisation).</summary>
    public static IReadOnlyList<string> Tokenize(string text, TerOptions? options = null)
    {
        var o = options ?? TerOptions.Default;
        var s = JavaTrimWhitespace(text);
        return JavaSplit(o.CaseSensitive ? s : JavaText.ToLower(s), o);
    }

    private static TerSegment Pair(string hypothesis, string reference, TerOptions o)
    {
        // tercom reads "text (id)" lines and strips the surrounding whitespace.
        var hyp = JavaTrimWhitespace(hypothesis);
        var reff = JavaTrimWhitespace(reference);
        if (!o.CaseSensitive)
        {
            hyp = JavaText.ToLower(hyp);
            reff = JavaText.ToLower(reff);
        }

        var hypWords = JavaSplit(hyp, o);
        var refWords = JavaSplit(reff, o);
        if (reff.Length == 0 || hyp.Length == 0)
        {
            // TERnullstr: "".split("\\s+") is one empty token in Java.
            if (hyp.Length == 0 && reff.Length == 0)
            {
                return new TerSegment(0, 0, 0);
            }

            return hyp.Length == 0
                ? new TerSegment(refWords.Length, refWords.Length, 0)
                : new TerSegment(hypWords.Length, 0, 0);
        }

        return Score(hypWords, refWords, o);
    }

    private static TerSegment Score(string[] hyp, string[] reference, TerOptions o)
    {
        var rloc = BuildWordMatches(hyp, reference);
        var align = MinEditDistance(hyp, reference, o.BeamWidth);
        var current = hyp;
        var shiftEdits = 0.0;
        var shifts = 0;
        while (true)
        {
            var next = BestShift(current, hyp, reference, rloc, align, o);
            if (next is null)
            {
                break;
            }

            shiftEdits += 1.0;
            shifts++;
            (current, align) = next.Value;
        }

        return new TerSegment(align.Edits + shiftEdits, reference.Length, shifts);
    }

    /// <summary>Every reference phrase of up to 11 words made of words that occur in the hypothesis, with its start positions.</summary>
    private static Dictionary<Phrase, SortedSet<int>> BuildWordMatches(string[] hyp, string[] reference)
    {
        var hypWords = new HashSet<string>(hyp, StringComparer.Ordinal);
        var correct = reference.Select(hypWords.Contains).ToArray();
        var result = new Dictionary<Phrase, SortedSet<int>>();
        for (var start = 0; start < reference.Length; start++)
        {
            if (!correct[start])
            {
                continue;
            }

            for (var end = start; end < reference.Length && end - start <= MaxShiftSize && correct[end]; end++)
            {
                var key = new Phrase(reference, start, end - start + 1);
                if (!result.TryGetValue(key, out var starts))
                {
                    result[key] = starts = [];
                }

                starts.Add(start);
            }
        }

        return result;
    }

    private static void FindAlignErrors(char[] alignment, bool[] hypErr, bool[] refErr, int[] refAlign)
    {
        int hpos = -1, rpos = -1;
        foreach (var sym in alignment)
        {
            switch (sym)
            {
                case ' ':
                    hpos++;
                    rpos++;
                    hypErr[hpos] = false;
                    refErr[rpos] = false;
                    refAlign[rpos] = hpos;
                    break;
                case 'S':
                    hpos++;
                    rpos++;
                    hypErr[hpos] = true;
                    refErr[rpos] = true;
                    refAlign[rpos] = hpos;
                    break;
                case 'I':
                    hpos++;
                    hypErr[hpos] = true;
                    break;
                case 'D':
                    rpos++;
                    refErr[rpos] = true;
                    refAlign[rpos] = hpos;
                    break;
                default:
                    throw new InvalidOperationException($"invalid alignment symbol '{sym}'");
            }
        }
    }

    /// <summary>tercom's <c>CalcBestShift</c>: the first shift (longest first) that lowers edits, or null.</summary>
    private static (string[] Words, Alignment Align)? BestShift(string[] current, string[] hyp, string[] reference,
        Dictionary<Phrase, SortedSet<int>> rloc, Alignment align, TerOptions o)
    {
        var hypErr = new bool[hyp.Length];
        var refErr = new bool[reference.Length];
        var refAlign = new int[reference.Length];
        FindAlignErrors(align.Path, hypErr, refErr, refAlign);
        var candidates = GatherShifts(current, rloc, hypErr, refErr, refAlign, o.MaxShiftDistance);

        var currentErrors = align.Edits;
        var bestCost = 0.0;
        var bestAlign = align;
        string[]? bestWords = null;
        var anyGain = false;
        for (var i = candidates.Length - 1; i >= 0; i--)
        {
            var curfix = currentErrors - (bestCost + bestAlign.Edits);
            var maxfix = 2.0 * (1 + i);
            if (curfix > maxfix || (bestCost != 0 && curfix == maxfix))
            {
                break;
            }

            foreach (var shift in candidates[i])
            {
                curfix = currentErrors - (bestCost + bestAlign.Edits);
                if (curfix > maxfix || (bestCost != 0 && curfix == maxfix))
                {
                    break;
                }

                var shifted = PerformShift(current, shift.Start, shift.End, shift.NewLocation);
                var shiftedAlign = MinEditDistance(shifted, reference, o.BeamWidth);
                var gain = (bestAlign.Edits + bestCost) - (shiftedAlign.Edits + 1.0);
                if (gain > 0 || (bestCost == 0 && gain == 0))
                {
                    anyGain = true;
                    bestCost = 1.0;
                    bestAlign = shiftedAlign;
                    bestWords = shifted;
                }
            }
        }

        return anyGain ? (bestWords!, bestAlign) : null;
    }

    private static List<Shift>[] GatherShifts(string[] hyp, Dictionary<Phrase, SortedSet<int>> rloc,
        bool[] hypErr, bool[] refErr, int[] refAlign, int maxShiftDistance)
    {
        var all = new List<Shift>[MaxShiftSize + 1];
        for (var i = 0; i < all.Length; i++)
        {
            all[i] = [];
        }

        if (maxShiftDistance <= 0)
        {
            return all;
        }

        for (var start = 0; start < hyp.Length; start++)
        {
            if (!rloc.TryGetValue(new Phrase(hyp, start, 1), out var firstWordStarts))
            {
                continue;
            }

            var ok = false;
            foreach (var moveto in firstWordStarts)
            {
                if (start != refAlign[moveto] && refAlign[moveto] - start <= maxShiftDistance && start - refAlign[moveto] - 1 <= maxShiftDistance)
                {
                    ok = true;
                    break;
                }
            }

            if (!ok)
            {
                continue;
            }

            ok = true;
            for (var end = start; ok && end < hyp.Length && end < start + MaxShiftSize; end++)
            {
                ok = false;
                if (!rloc.TryGetValue(new Phrase(hyp, start, end - start + 1), out var starts))
                {
                    continue;
                }

                var anyHypErr = false;
                for (var i = 0; i <= end - start && !anyHypErr; i++)
                {
                    anyHypErr |= hypErr[start + i];
                }

                if (!anyHypErr)
                {
                    ok = true;
                    continue;
                }

                foreach (var moveto in starts)
                {
                    if (!(refAlign[moveto] != start && (refAlign[moveto] < start || refAlign[moveto] > end)
                          && refAlign[moveto] - start <= maxShiftDistance && start - refAlign[moveto] <= maxShiftDistance))
                    {
                        continue;
                    }

                    ok = true;
                    var anyRefErr = false;
                    for (var i = 0; i <= end - start && !anyRefErr; i++)
                    {
                        anyRefErr |= refErr[moveto + i];
                    }

                    if (!anyRefErr)
                    {
                        continue;
                    }

                    for (var roff = -1; roff <= end - start; roff++)
                    {
                        if (roff == -1 && moveto == 0)
                        {
                            all[end - start].Add(new Shift(start, end, -1));
                        }
                        else if (start != refAlign[moveto + roff] && (roff == 0 || refAlign[moveto + roff] != refAlign[moveto]))
                        {
                            all[end - start].Add(new Shift(start, end, refAlign[moveto + roff]));
                        }
                    }
                }
            }
        }

        return all;
    }

    private static string[] PerformShift(string[] words, int start, int end, int newloc)
    {
        var result = new List<string>(words.Length);
        void Add(int from, int toInclusive)
        {
            for (var i = from; i <= toInclusive && i < words.Length; i++)
            {
                result.Add(words[i]);
            }
        }

        if (newloc == -1)
        {
            Add(start, end);
            Add(0, start - 1);
            Add(end + 1, words.Length - 1);
        }
        else if (newloc < start)
        {
            Add(0, newloc);
            Add(start, end);
            Add(newloc + 1, start - 1);
            Add(end + 1, words.Length - 1);
        }
        else if (newloc > end)
        {
            Add(0, start - 1);
            Add(end + 1, newloc);
            Add(start, end);
            Add(newloc + 1, words.Length - 1);
        }
        else
        {
            // Moving inside itself.
            Add(0, start - 1);
            Add(end + 1, end + (newloc - start));
            Add(start, end);
            Add(end + (newloc - start) + 1, words.Length - 1);
        }

        return [.. result];
    }

    /// <summary>tercom's beam-pruned Levenshtein distance (match 0, substitution/insertion/deletion 1) and its path.</summary>
    private static Alignment MinEditDistance(string[] hyp, string[] reference, int beamWidth)
    {
        var rows = reference.Length + 1;
        var cols = hyp.Length + 1;
        var s = new double[rows, cols];
        var p = new char[rows, cols];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                s[i, j] = -1.0;
                p[i, j] = '0';
            }
        }

        s[0, 0] = 0.0;
        var currentBest = Infinity;
        double lastBest;
        int firstGood, currentFirstGood = 0, lastGood, curLastGood = 0, curLastPeak = 0;
        for (var j = 0; j <= hyp.Length; j++)
        {
            lastBest = currentBest;
            currentBest = Infinity;
            firstGood = currentFirstGood;
            currentFirstGood = -1;
            lastGood = curLastGood;
            curLastGood = -1;
            curLastPeak = 0;
            for (var i = firstGood; i <= reference.Length; i++)
            {
                if (i > lastGood)
                {
                    break;
                }

                if (s[i, j] < 0)
                {
                    continue;
                }

                var score = s[i, j];
                if (j < hyp.Length && score > lastBest + beamWidth)
                {
                    continue;
                }

                if (currentFirstGood == -1)
                {
                    currentFirstGood = i;
                }

                if (i < reference.Length && j < hyp.Length)
                {
                    if (string.Equals(reference[i], hyp[j], StringComparison.Ordinal))
                    {
                        var cost = 0.0 + score;
                        if (s[i + 1, j + 1] == -1 || cost < s[i + 1, j + 1])
                        {
                            s[i + 1, j + 1] = cost;
                            p[i + 1, j + 1] = ' ';
                        }

                        if (cost < currentBest)
                        {
                            currentBest = cost;
                        }

                        if (currentBest == cost)
                        {
                            curLastPeak = i + 1;
                        }
                    }
                    else
                    {
                        var cost = 1.0 + score;
                        if (s[i + 1, j + 1] < 0 || cost < s[i + 1, j + 1])
                        {
                            s[i + 1, j + 1] = cost;
                            p[i + 1, j + 1] = 'S';
                            if (cost < currentBest)
                            {
                                currentBest = cost;
                            }

                            if (currentBest == cost)
                            {
                                curLastPeak = i + 1;
                            }
                        }
                    }
                }

                curLastGood = i + 1;
                if (j < hyp.Length)
                {
                    var icost = score + 1.0;
                    if (s[i, j + 1] < 0 || s[i, j + 1] > icost)
                    {
                        s[i, j + 1] = icost;
                        p[i, j + 1] = 'I';
                        if (curLastPeak < i && currentBest == icost)
                        {
                            curLastPeak = i;
                        }
                    }
                }

                if (i < reference.Length)
                {
                    var dcost = score + 1.0;
                    if (s[i + 1, j] < 0.0 || s[i + 1, j] > dcost)
                    {
                        s[i + 1, j] = dcost;
                        p[i + 1, j] = 'D';
                        if (i >= lastGood)
                        {
                            lastGood = i + 1;
                        }
                    }
                }
            }
        }

        var path = new List<char>();
        int ri = reference.Length, hj = hyp.Length;
        while (ri > 0 || hj > 0)
        {
            var sym = p[ri, hj];
            path.Add(sym);
            switch (sym)
            {
                case ' ' or 'S':
                    ri--;
                    hj--;
                    break;
                case 'D':
                    ri--;
                    break;
                case 'I':
                    hj--;
                    break;
                default:
                    throw new InvalidOperationException($"TER: invalid edit path at ({ri}, {hj})");
            }
        }

        path.Reverse();
        return new Alignment([.. path], s[reference.Length, hyp.Length]);
    }

    /// <summary>Java <c>String.trim()</c> restricted to what tercom's line reader strips (ASCII whitespace and controls).</summary>
    private static string JavaTrimWhitespace(string s) => MeteorNormalizer.JavaTrim(s);

    /// <summary>tercom's <c>Normalizer.tokenize</c>: optional normalisation, then Java <c>split("\\s+")</c>.</summary>
    private static string[] JavaSplit(string s, TerOptions o)
    {
        if (o.Normalize)
        {
            s = s.Replace("<skipped>", "", StringComparison.Ordinal)
                .Replace("-\n", "", StringComparison.Ordinal)
                .Replace("\n", " ", StringComparison.Ordinal)
                .Replace("&quot;", "\"", StringComparison.Ordinal)
                .Replace("&amp;", "&", StringComparison.Ordinal)
                .Replace("&lt;", "<", StringComparison.Ordinal)
                .Replace("&gt;", ">", StringComparison.Ordinal);
            s = " " + s + " ";
            s = NormPunctuation().Replace(s, " $1 ");
            s = s.Replace("'s ", " 's ", StringComparison.Ordinal);
            s = NormPossessiveEnd().Replace(s, " 's");
            s = NormPeriodCommaNotAfterDigit().Replace(s, "$1 $2 ");
            s = NormPeriodCommaNotBeforeDigit().Replace(s, " $1 $2");
            s = NormDashAfterDigit().Replace(s, "$1 $2 ");
            s = JavaWhitespaceRun().Replace(s, " ");
            s = LeadingJavaWhitespace().Replace(s, "");
            s = TrailingJavaWhitespace().Replace(s, "");
        }

        if (o.NoPunctuation)
        {
            s = NoPunct().Replace(s, "");
            s = JavaWhitespaceRun().Replace(s, " ");
        }

        // Java's split: no match gives the string itself ("" gives [""]); otherwise trailing empty strings are
        // dropped and a leading one is kept.
        if (!JavaWhitespaceRun().IsMatch(s))
        {
            return [s];
        }

        var parts = JavaWhitespaceRun().Split(s).ToList();
        while (parts.Count > 0 && parts[^1].Length == 0)
        {
            parts.RemoveAt(parts.Count - 1);
        }

        return [.. parts];
    }

    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])")]
    private static partial Regex NormPunctuation();

    [GeneratedRegex(@"'s\z")]
    private static partial Regex NormPossessiveEnd();

    [GeneratedRegex(@"([^0-9])([\.,])")]
    private static partial Regex NormPeriodCommaNotAfterDigit();

    [GeneratedRegex(@"([\.,])([^0-9])")]
    private static partial Regex NormPeriodCommaNotBeforeDigit();

    [GeneratedRegex(@"([0-9])(-)")]
    private static partial Regex NormDashAfterDigit();

    [GeneratedRegex("[ \t\n\u000B\f\r]+")]
    private static partial Regex JavaWhitespaceRun();

    [GeneratedRegex("^[ \t\n\u000B\f\r]+")]
    private static partial Regex LeadingJavaWhitespace();

    [GeneratedRegex("[ \t\n\u000B\f\r]+$")]
    private static partial Regex TrailingJavaWhitespace();

    [GeneratedRegex("[\\.,\\?:;!\"\\(\\)]")]
    private static partial Regex NoPunct();

    private sealed record Alignment(char[] Path, double Edits);

    private readonly record struct Shift(int Start, int End, int NewLocation);

    /// <summary>A word sequence compared by content (tercom keys its map by <c>List&lt;String&gt;</c>).</summary>
    private readonly struct Phrase : IEquatable<Phrase>
    {
        private readonly string[] _words;
        private readonly int _start;
        private readonly int _length;
        private readonly int _hash;

        public Phrase(string[] words, int start, int length)
        {
            _words = words;
            _start = start;
            _length = length;
            var h = new HashCode();
            for (var i = 0; i < length; i++)
            {
                h.Add(words[start + i], StringComparer.Ordinal);
            }

            _hash = h.ToHashCode();
        }

        public bool Equals(Phrase other)
        {
            if (_length != other._length)
            {
                return false;
            }

            for (var i = 0; i < _length; i++)
            {
                if (!string.Equals(_words[_start + i], other._words[other._start + i], StringComparison.Ordinal))
                {
                    return false;
                }
            }

            return true;
        }

        public override bool Equals(object? obj) => obj is Phrase p && Equals(p);

        public override int GetHashCode() => _hash;
    }
}
