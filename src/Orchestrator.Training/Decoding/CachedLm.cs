using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Decoding;

/// <summary>
/// Next-token scoring with a key/value cache for the decoders: the base with a method's hooks, or a method's decoding-time
/// logit mixture (each member with its own cache). Rows are left-padded prompts; the caller describes every row by its
/// padding (<c>pads</c>) and the number of tokens it has so far, and this class builds each member's attention mask and
/// absolute position ids (members with V virtual tokens have V more cache entries in front, all real).
/// <para>
/// The caches live outside every DisposeScope and are owned here (disposed on <see cref="Select"/> and <see cref="Dispose"/>);
/// the logits returned by <see cref="Prefill"/> and <see cref="Step"/> belong to the caller's DisposeScope.
/// </para>
/// </summary>
internal sealed class CachedLm : IDisposable
{
    private readonly Member[] _members;
    private readonly long _vocab;

    public CachedLm(CausalLm model, IPeftMethod? method)
    {
        _vocab = model.Shape.VocabSize;
        _members = method?.LogitMixture is { Count: > 0 } mixture
            ? mixture.Select(m => new Member(m.Model, m.Hooks, m.Weight)).ToArray()
            : [new Member(model, method?.Hooks, 1.0)];
        foreach (var m in _members)
        {
            if (m.Model.Shape.VocabSize < _vocab)
            {
                throw new InvalidOperationException(
                    $"A model of the logit mixture has {m.Model.Shape.VocabSize} embeddings, fewer than the base's {_vocab}.");
            }
        }
    }

    /// <summary>Positions left for real tokens: the smallest model's, less its virtual tokens (generation stops there).</summary>
    public int Positions => _members.Min(m => m.Model.Shape.Positions - (m.Hooks?.VirtualTokens ?? 0));

    /// <summary>
    /// Runs the prompts (ids [B,T], left-padded by <paramref name="pads"/>) and returns the next-token logits [B, V] at the
    /// last position. Starts the caches.
    /// </summary>
    public Tensor Prefill(long[] ids, int[] pads, int t)
    {
        int b = pads.Length;
        bool padded = pads.Any(p => p > 0);
        Device device = _members[0].Model.Device;
        var mask = new long[b * t];
        var pos = new long[b * t];
        for (int r = 0; r < b; r++)
        {
            for (int c = 0; c < t; c++)
            {
                bool real = c >= pads[r];
                mask[r * t + c] = real ? 1 : 0;
                pos[r * t + c] = real ? c - pads[r] : 0;
            }
        }

        ReadOnlySpan<long> shape = [b, t];
        Tensor idsTensor = tensor(ids, shape, ScalarType.Int64, device);
        Tensor? maskTensor = padded ? tensor(mask, shape, ScalarType.Int64, device) : null;
        Tensor? posTensor = padded ? tensor(pos, shape, ScalarType.Int64, device) : null;
        Tensor? sum = null;
        foreach (var m in _members)
        {
            m.DisposeCache();
            var presents = new List<LayerKeyValue>();
            Tensor hidden = m.Model.Hidden(idsTensor, posTensor, maskTensor, hooks: m.Hooks, presents: presents);
            m.Adopt(presents);
            m.Virtual = (int)(presents[0].Length - t);
            Tensor logits = m.Model.Logits(hidden.select(1, t - 1), m.Hooks);
            sum = Add(sum, logits, m.Weight);
        }

        return sum!;
    }

    /// <summary>
    /// Feeds one new token per row ([B]) and returns the next-token logits [B, V]. <paramref name="length"/> is the number of
    /// tokens each row's cache holds before this one, padding included (the same for all rows); <paramref name="pads"/> the
    /// rows' left padding, so the new token's position is length − pad.
    /// </summary>
    public Tensor Step(long[] tokens, int[] pads, int length)
    {
        int b = pads.Length;
        bool padded = pads.Any(p => p > 0);
        Device device = _members[0].Model.Device;
        Tensor ids = tensor(tokens, [b, 1], ScalarType.Int64, device);
        Tensor? sum = null;
        foreach (var m in _members)
        {
            Tensor? maskTensor = null;
            Tensor? posTensor = null;
            if (padded)
            {
                int keys = m.Virtual + length + 1;
                var mask = new long[b * keys];
                var pos = new long[b];
                for (int r = 0; r < b; r++)
                {
                    for (int c = 0; c < keys; c++)
                    {
                        mask[r * keys + c] = c < m.Virtual || c - m.Virtual >= pads[r] ? 1 : 0;
                    }

                    pos[r] = m.Virtual + length - pads[r];
                }

                maskTensor = tensor(mask, [b, keys], ScalarType.Int64, device);
                posTensor = tensor(pos, [b, 1], ScalarType.Int64, device);
            }

            var presents = new List<LayerKeyValue>();
            Tensor hidden = m.Model.Hidden(ids, posTensor, maskTensor, m.Cache, m.Hooks, presents);
            m.DisposeCache();
            m.Adopt(presents);
            Tensor logits = m.Model.Logits(hidden.select(1, 0), m.Hooks);
            sum = Add(sum, logits, m.Weight);
        }

        return sum!;
    }

    /// <summary>Keeps (and reorders or repeats) cache rows: row i of the new cache is row <paramref name="rows"/>[i] of the old.</summary>
    public void Select(long[] rows)
    {
        using var scope = NewDisposeScope();
        Tensor index = tensor(rows, ScalarType.Int64, _members[0].Model.Device);
        foreach (var m in _members)
        {
            if (m.Cache is null) continue;
            var selected = m.Cache
                .Select(kv => new LayerKeyValue(
                    kv.Key.index_select(0, index).DetachFromDisposeScope(),
                    kv.Value.index_select(0, index).DetachFromDisposeScope()))
                .ToList();
            m.DisposeCache();
            m.Cache = selected;
        }
    }

    /// <summary>
    /// Masks what may not be generated, in place on logits [B, V]: ids the tokenizer has no text for, banned ids, and the end
    /// token when <paramref name="banEnd"/>.
    /// </summary>
    public static void Constrain(Tensor logits, ITextTokenizer tokenizer, IReadOnlyCollection<int> banned, bool banEnd)
    {
        long v = logits.shape[1];
        if (v > tokenizer.VocabSize)
        {
            logits.narrow(1, tokenizer.VocabSize, v - tokenizer.VocabSize).fill_(float.NegativeInfinity);
        }

        if (banned.Count > 0)
        {
            long[] ids = banned.Where(id => id >= 0 && id < v).Select(id => (long)id).ToArray();
            if (ids.Length > 0)
            {
                using var index = tensor(ids, ScalarType.Int64, logits.device);
                logits.index_fill_(1, index, float.NegativeInfinity);
            }
        }

        if (banEnd)
        {
            logits.select(1, tokenizer.EndOfText).fill_(float.NegativeInfinity);
        }
    }

    /// <summary>
    /// Forbids the end token in the rows of <paramref name="logits"/> [R,V] whose prompt + generated tokens are still fewer
    /// than <paramref name="minLength"/> (transformers' min_length); <paramref name="promptLength"/> gives each row's prompt.
    /// </summary>
    public static void BanEndBelowMinLength(Tensor logits, ITextTokenizer tokenizer, int minLength, Func<int, int> promptLength, int generatedSoFar)
    {
        if (minLength <= 0) return;
        long rows = logits.shape[0];
        var banned = new List<long>();
        for (int r = 0; r < rows; r++)
        {
            if (promptLength(r) + generatedSoFar < minLength) banned.Add(r);
        }

        if (banned.Count == 0) return;
        using var index = tensor(banned.ToArray(), ScalarType.Int64, logits.device);
        using var column = logits.select(1, tokenizer.EndOfText);
        column.index_fill_(0, index, float.NegativeInfinity);
    }

    public void Dispose()
    {
        foreach (var m in _members) m.DisposeCache();
    }

    private Tensor Add(Tensor? sum, Tensor logits, double weight)
    {
        Tensor part = logits.shape[1] > _vocab ? logits.narrow(1, 0, _vocab) : logits;
        if (_members.Length > 1 || weight != 1.0) part = part * weight;
        return sum is null ? part : sum + part;
    }

    private sealed class Member(CausalLm model, Gpt2Hooks? hooks, double weight)
    {
        public CausalLm Model { get; } = model;

        public Gpt2Hooks? Hooks { get; } = hooks;

        public double Weight { get; } = weight;

        public List<LayerKeyValue>? Cache { get; set; }

        /// <summary>Virtual tokens (prefix or prompt) the hooks put in front of the cache.</summary>
        public int Virtual { get; set; }

        public void Adopt(List<LayerKeyValue> presents)
        {
            foreach (var kv in presents)
            {
                kv.Key.DetachFromDisposeScope();
                kv.Value.DetachFromDisposeScope();
            }

            Cache = presents;
        }

        public void DisposeCache()
        {
            if (Cache is null) return;
            foreach (var kv in Cache)
            {
                kv.Key.Dispose();
                kv.Value.Dispose();
            }

            Cache = null;
        }
    }
}
