namespace Orchestrator.Training.Tokenization;

/// <summary>
/// Learns a GPT-2-style byte-level BPE vocabulary from a corpus (for bases the project pretrains itself): texts are split
/// with GPT-2's pre-tokenizer, words are counted, and the most frequent adjacent pair of symbols is merged until the
/// vocabulary has <c>vocabSize</c> entries (256 bytes + merges + <c>&lt;|endoftext|&gt;</c>) or no pair occurs
/// <c>minFrequency</c> times. Ties go to the ordinally smallest pair, so the result is a pure function of the corpus.
/// Ids: the 256 byte characters in byte order, then the merges in rank order, then <c>&lt;|endoftext|&gt;</c> (as in GPT-2).
/// </summary>
public static class BpeTrainer
{
    public static Gpt2BpeTokenizer Train(IEnumerable<string> texts, int vocabSize, int minFrequency = 2)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 257);
        ArgumentOutOfRangeException.ThrowIfLessThan(minFrequency, 1);

        // Unique pre-tokenized words with their counts, as symbol-id sequences over the 256 byte characters.
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var regex = ByteLevel.Gpt2Regex();
        foreach (string text in texts)
        {
            foreach (string part in text.Split(Gpt2BpeTokenizer.EndOfTextToken))
            {
                foreach (System.Text.RegularExpressions.ValueMatch m in regex.EnumerateMatches(part))
                {
                    string word = ByteLevel.Encode(part.Substring(m.Index, m.Length));
                    counts[word] = counts.GetValueOrDefault(word) + 1;
                }
            }
        }

        var symbols = new List<string>(vocabSize);
        var symbolIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (char c in ByteLevel.Alphabet)
        {
            symbolIds[c.ToString()] = symbols.Count;
            symbols.Add(c.ToString());
        }

        var words = new List<int[]>(counts.Count);
        var frequency = new List<long>(counts.Count);
        foreach (var (word, count) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            words.Add(word.Select(ch => symbolIds[ch.ToString()]).ToArray());
            frequency.Add(count);
        }

        var pairCounts = new Dictionary<(int, int), long>();
        var pairWords = new Dictionary<(int, int), HashSet<int>>();
        for (int w = 0; w < words.Count; w++) AddPairs(w);

        var merges = new List<string>();
        while (symbols.Count < vocabSize - 1)
        {
            (int A, int B) best = default;
            long bestCount = 0;
            foreach (var (pair, count) in pairCounts)
            {
                if (count > bestCount || (count == bestCount && count > 0 && Compare(pair, best) < 0))
                {
                    best = pair;
                    bestCount = count;
                }
            }

            if (bestCount < minFrequency)
            {
                break;
            }

            // Two different pairs may spell the same string ("ab c", "a bc"): both merges map to one id.
            string merged = symbols[best.A] + symbols[best.B];
            int id = symbolIds.TryGetValue(merged, out int existing) ? existing : symbols.Count;
            if (id == symbols.Count)
            {
                symbols.Add(merged);
                symbolIds[merged] = id;
            }

            merges.Add(symbols[best.A] + " " + symbols[best.B]);
            foreach (int w in pairWords[best].ToArray())
            {
                RemovePairs(w);
                words[w] = Merge(words[w], best.A, best.B, id);
                AddPairs(w);
            }

            pairCounts.Remove(best);
            pairWords.Remove(best);
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < symbols.Count; i++) vocab[symbols[i]] = i;
        vocab[Gpt2BpeTokenizer.EndOfTextToken] = symbols.Count;
        return Gpt2BpeTokenizer.Create(vocab, merges);

        int Compare((int A, int B) x, (int A, int B) y)
        {
            int c = string.CompareOrdinal(symbols[x.A], symbols[y.A]);
            return c != 0 ? c : string.CompareOrdinal(symbols[x.B], symbols[y.B]);
        }

        void AddPairs(int w)
        {
            int[] s = words[w];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                var pair = (s[i], s[i + 1]);
                pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + frequency[w];
                if (!pairWords.TryGetValue(pair, out var set)) pairWords[pair] = set = [];
                set.Add(w);
            }
        }

        void RemovePairs(int w)
        {
            int[] s = words[w];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                var pair = (s[i], s[i + 1]);
                long left = pairCounts.GetValueOrDefault(pair) - frequency[w];
                if (left <= 0)
                {
                    pairCounts.Remove(pair);
                }
                else
                {
                    pairCounts[pair] = left;
                }

                if (pairWords.TryGetValue(pair, out var set)) set.Remove(w);
            }
        }
    }

    private static int[] Merge(int[] s, int a, int b, int merged)
    {
        var result = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (i + 1 < s.Length && s[i] == a && s[i + 1] == b)
            {
                result.Add(merged);
                i++;
            }
            else
            {
                result.Add(s[i]);
            }
        }

        return result.ToArray();
    }
}
