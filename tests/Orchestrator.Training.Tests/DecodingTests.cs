using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// Cached greedy and beam decoding against decoders written here without a cache (the whole sequence re-run each step) and
/// against exhaustive search.
/// </summary>
public sealed class DecodingTests(ITestOutputHelper output)
{
    private static readonly string[] Sources = ["a b c", "d", "e f g h i j", "b b", "j i h", "c", "a b c d e f g h", "g"];

    private static Gpt2Model RandomModel(WordLevelTokenizer tokenizer, long seed = 3, int vocabPadding = 0) =>
        new(Gpt2Config.Preset("test", tokenizer.VocabSize + vocabPadding), seed);

    [Fact]
    public void Presents_continue_a_sequence_exactly_as_one_full_forward_with_and_without_left_padding()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = RandomModel(tokenizer);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var full = tensor(new long[] { 3, 4, 5, 6, 7, 8, 9 }, [1, 7]);
        var expected = model.forward(full);

        var presents = new List<LayerKeyValue>();
        var hidden = model.Hidden(full.narrow(1, 0, 4), presents: presents);
        Assert.Equal(model.Config.Layers, presents.Count);
        Assert.All(presents, p => Assert.Equal([1, 2, 4, model.Config.HeadDim], p.Key.shape));
        var parts = new List<Tensor> { model.Logits(hidden) };
        for (int t = 4; t < 7; t++)
        {
            var next = new List<LayerKeyValue>();
            parts.Add(model.Logits(model.Hidden(full.narrow(1, t, 1), past: presents, presents: next)));
            presents = next;
        }

        Assert.True(cat(parts.ToArray(), 1).allclose(expected, rtol: 1e-5, atol: 1e-5));

        // Left padding: row 0 is the same sequence behind 2 pad positions; positions count from the first real token.
        var padded = tensor(new long[] { 1, 1, 3, 4, 5, 6, 7 }, [1, 7]);
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1 }, [1, 7]);
        var positions = tensor(new long[] { 0, 0, 0, 1, 2, 3, 4 }, [1, 7]);
        var cache = new List<LayerKeyValue>();
        var first = model.Logits(model.Hidden(padded, positions, mask, presents: cache)).select(1, 6);
        Assert.True(first.allclose(expected.select(1, 4), rtol: 1e-5, atol: 1e-5));
        var step = model.Logits(model.Hidden(tensor(new long[] { 8 }, [1, 1]), tensor(new long[] { 5 }, [1, 1]),
            tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1 }, [1, 8]), cache)).select(1, 0);
        Assert.True(step.allclose(expected.select(1, 5), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Cached_greedy_equals_decoding_without_a_cache_batched_or_not()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = TrainedCopyModel(tokenizer);
        var options = new DecodingOptions { MaxNewTokens = 6, MinNewTokens = 2, BannedTokenIds = [tokenizer.Unknown] };
        var expected = Sources.Select(s => NaiveGreedy(null, model, tokenizer, s, options)).ToList();
        Assert.Contains(expected, e => e.Count == 6);
        Assert.Contains(expected, e => e.Count < 6);
        Assert.Equal(expected, GreedyDecoder.DecodeIds(model, tokenizer, Sources, options));
        Assert.Equal(expected, GreedyDecoder.DecodeIds(model, tokenizer, Sources, options with { BatchSize = 3 }));
        Assert.Equal(expected, GreedyDecoder.DecodeIds(model, tokenizer, Sources, options with { BatchSize = 1 }));
    }

    [Fact]
    public void Cached_decoding_passes_a_methods_hooks_and_virtual_tokens_on_every_step()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = TrainedCopyModel(tokenizer);
        var options = new DecodingOptions { MaxNewTokens = 10 };
        foreach (var hooks in new Gpt2Hooks[] { new PrefixHooks(model.Config, 3), new PromptHooks(model.Config, 4), new ProjectionHooks(model.Config) })
        {
            using var method = new FakeMethod(hooks);
            var expected = Sources.Select(s => NaiveGreedy(method, model, tokenizer, s, options)).ToList();
            var plain = Sources.Select(s => NaiveGreedy(null, model, tokenizer, s, options)).ToList();
            Assert.NotEqual(plain, expected); // the hooks matter
            Assert.Equal(expected, GreedyDecoder.DecodeIds(model, tokenizer, Sources, options, method));
            Assert.Equal(expected, BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, options with { BeamSize = 1 }, method));
        }
    }

    [Fact]
    public void A_logit_mixture_is_decoded_with_one_cache_per_model()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = RandomModel(tokenizer, seed: 1);
        using var expert = RandomModel(tokenizer, seed: 2, vocabPadding: 2);
        using var anti = RandomModel(tokenizer, seed: 4);
        using var method = new FakeMethod(null, [new(model, 1.0), new(expert, 1.5, new PrefixHooks(expert.Config, 2)), new(anti, -1.5)]);
        var options = new DecodingOptions { MaxNewTokens = 8 };
        var expected = Sources.Select(s => NaiveGreedy(method, model, tokenizer, s, options)).ToList();
        Assert.Equal(expected, GreedyDecoder.DecodeIds(model, tokenizer, Sources, options, method));
    }

    [Fact]
    public void Beam_size_one_is_greedy()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = TrainedCopyModel(tokenizer);
        using var random = RandomModel(tokenizer);
        foreach (var m in new[] { model, random })
        {
            var options = new DecodingOptions { MaxNewTokens = 10, MinNewTokens = 1, LengthPenalty = 0.8, BannedTokenIds = [4] };
            var greedy = GreedyDecoder.DecodeIds(m, tokenizer, Sources, options);
            Assert.Equal(greedy, BeamSearchDecoder.DecodeIds(m, tokenizer, Sources, options with { BeamSize = 1 }));
            Assert.Equal(greedy, BeamSearchDecoder.DecodeIds(m, tokenizer, Sources, options with { BeamSize = 1, BatchSize = 3 }));
        }
    }

    [Theory]
    [InlineData(1.0, 0, LengthNormalization.NewTokens, 0)]
    [InlineData(0.8, 1, LengthNormalization.NewTokens, 0)]
    [InlineData(0.0, 2, LengthNormalization.NewTokens, 0)]
    [InlineData(1.0, 0, LengthNormalization.FullSequence, 0)]
    [InlineData(0.8, 0, LengthNormalization.FullSequence, 0)]
    [InlineData(2.0, 0, LengthNormalization.FullSequence, 0)]
    [InlineData(0.8, 0, LengthNormalization.FullSequence, 5)] // counts the prompt: binds for "c" (2 prompt tokens), not "b a c a" (5)
    [InlineData(1.0, 1, LengthNormalization.NewTokens, 4)]
    public void Wide_beams_find_the_best_sequence_of_an_exhaustive_search(double lengthPenalty, int minNew, LengthNormalization normalization, int minLength)
    {
        // Four possible tokens (a, b, c and the end token; pad, unk and the other symbols are banned) and at most 3 new
        // tokens: 4^2 = 16 beams hold every prefix, so beam search is exact under either scoring.
        var tokenizer = WordLevelTokenizer.Build(["a", "b", "c"]);
        int[] banned = [tokenizer.Pad, tokenizer.Unknown];
        using var model = new Gpt2Model(Gpt2Config.Preset("test", tokenizer.VocabSize), 9);
        var options = new DecodingOptions
        {
            MaxNewTokens = 3, MinNewTokens = minNew, BeamSize = 16, LengthPenalty = lengthPenalty, BannedTokenIds = banned,
            Normalization = normalization, MinLength = minLength,
        };
        string[] sources = ["a b", "c", "b a c a"];
        var hypotheses = BeamSearchDecoder.DecodeHypotheses(model, tokenizer, sources, options);
        for (int i = 0; i < sources.Length; i++)
        {
            var (tokens, score) = Exhaustive(model, tokenizer, sources[i], options);
            output.WriteLine($"{sources[i]}: exhaustive [{string.Join(" ", tokens)}] {score:F6}; beam [{string.Join(" ", hypotheses[i].Tokens)}] {hypotheses[i].Score:F6}");
            Assert.Equal(tokens, hypotheses[i].Tokens);
            Assert.Equal(score, hypotheses[i].Score, 5);
        }
    }

    [Fact]
    public void Batched_beam_search_equals_one_source_at_a_time_and_respects_bans_and_lengths()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = TrainedCopyModel(tokenizer);
        int banned = tokenizer.Encode("c")[0];
        var options = new DecodingOptions { MaxNewTokens = 7, MinNewTokens = 3, BeamSize = 4, LengthPenalty = 0.8, BannedTokenIds = [banned] };
        var batched = BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, options);
        var single = BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, options with { BatchSize = 1 });
        Assert.Equal(single, batched);
        Assert.All(batched, ids => Assert.InRange(ids.Count, 3, 7));
        Assert.All(batched, ids => Assert.DoesNotContain(banned, ids));
        Assert.All(batched, ids => Assert.DoesNotContain(tokenizer.EndOfText, ids));
        // Scored as transformers 3.x, with a min_length that counts each source's own prompt (left padding must not count).
        var paper = options with { Normalization = LengthNormalization.FullSequence, MinNewTokens = 0, MinLength = 8 };
        var paperBatched = BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, paper);
        Assert.Equal(BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, paper with { BatchSize = 1 }), paperBatched);
        for (int i = 0; i < Sources.Length; i++)
        {
            int prompt = tokenizer.Encode(CausalLmFormat.Prompt(Sources[i])).Count;
            Assert.True(prompt + paperBatched[i].Count >= Math.Min(8, prompt + 7), $"{Sources[i]}: {paperBatched[i].Count} tokens after a prompt of {prompt}");
        }

        var texts = BeamSearchDecoder.Decode(model, tokenizer, Sources, options with { BannedTokenIds = [], MinNewTokens = 0, MaxNewTokens = 20 });
        output.WriteLine(string.Join(" | ", texts));
        Assert.Equal(Sources, texts); // the model memorised the copies
    }

    [Fact]
    public void Decoding_leaks_no_tensors()
    {
        var tokenizer = TestData.SymbolTokenizer();
        using var model = RandomModel(tokenizer);
        using var method = new FakeMethod(new PrefixHooks(model.Config, 2));
        var options = new DecodingOptions { MaxNewTokens = 6, BeamSize = 3 };
        GreedyDecoder.DecodeIds(model, tokenizer, Sources, options, method); // first-use allocations
        BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, options, method);
        var stats = DisposeScopeManager.Statistics;
        long before = stats.TensorStatistics.ThreadTotalLiveCount;
        GreedyDecoder.DecodeIds(model, tokenizer, Sources, options, method);
        BeamSearchDecoder.DecodeIds(model, tokenizer, Sources, options, method);
        GreedyDecoder.DecodeIds(model, tokenizer, Sources, options);
        Assert.Equal(before, stats.TensorStatistics.ThreadTotalLiveCount);
    }

    private static readonly Lazy<Dictionary<string, Tensor>> CopyWeights = new(() =>
    {
        var tokenizer = TestData.SymbolTokenizer();
        var train = Sources.Select(s => new TrainingExample(s, s)).ToList();
        using var model = new Gpt2Model(Gpt2Config.Preset("test", tokenizer.VocabSize), 5);
        new CausalLmTrainer(model, tokenizer).Train(train, [], new TrainingOptions(200, 8, 1e-2, 10, 0, 3));
        using var noGrad = no_grad();
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
    });

    /// <summary>A model that memorised copying <see cref="Sources"/> (its outputs then have structure); trained once per run.</summary>
    private static Gpt2Model TrainedCopyModel(WordLevelTokenizer tokenizer)
    {
        var weights = CopyWeights.Value;
        var model = new Gpt2Model(Gpt2Config.Preset("test", tokenizer.VocabSize), 5);
        Checkpoints.ModelCheckpoint.CopyWeights(model, weights, "trained copy model");
        return model;
    }

    /// <summary>Greedy decoding of one source without a cache: the whole sequence runs again at every step.</summary>
    private static List<int> NaiveGreedy(IPeftMethod? method, Gpt2Model model, ITextTokenizer tokenizer, string source, DecodingOptions options)
    {
        var sequence = tokenizer.Encode(CausalLmFormat.Prompt(source)).ToList();
        var generated = new List<int>();
        int room = model.Config.Positions - (method?.Hooks?.VirtualTokens ?? 0);
        model.eval();
        using var noGrad = no_grad();
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            var ids = tensor(sequence.Select(i => (long)i).ToArray(), [1, sequence.Count]);
            var logits = PeftForward.NextTokenLogits(method, model, ids)[0].to_type(ScalarType.Float64);
            double[] values = logits.data<double>().ToArray();
            int best = -1;
            for (int v = 0; v < values.Length; v++)
            {
                bool allowed = v < tokenizer.VocabSize && !options.BannedTokenIds.Contains(v) && !(v == tokenizer.EndOfText && step < options.MinNewTokens);
                if (allowed && (best < 0 || values[v] > values[best])) best = v;
            }

            if (best == tokenizer.EndOfText) break;
            generated.Add(best);
            sequence.Add(best);
            if (sequence.Count >= room) break;
        }

        return generated;
    }

    /// <summary>Every continuation of up to MaxNewTokens tokens, scored as the beam search defines it; the best one.</summary>
    private static (List<int> Tokens, double Score) Exhaustive(Gpt2Model model, ITextTokenizer tokenizer, string source, DecodingOptions options)
    {
        var prompt = tokenizer.Encode(CausalLmFormat.Prompt(source)).ToList();
        (List<int> Tokens, double Score) best = ([], double.NegativeInfinity);
        model.eval();
        void Visit(List<int> generated, double sum)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var ids = prompt.Concat(generated).Select(i => (long)i).ToArray();
            var logp = nn.functional.log_softmax(model.forward(tensor(ids, [1, ids.Length]))[0, -1].to_type(ScalarType.Float64), 0).data<double>().ToArray();
            for (int v = 0; v < tokenizer.VocabSize; v++)
            {
                bool endBanned = generated.Count < options.MinNewTokens || prompt.Count + generated.Count < options.MinLength;
                if (options.BannedTokenIds.Contains(v) || (v == tokenizer.EndOfText && endBanned)) continue;
                double total = sum + logp[v];
                int length = generated.Count + 1;
                if (v == tokenizer.EndOfText || length == options.MaxNewTokens)
                {
                    var tokens = v == tokenizer.EndOfText ? generated.ToList() : [.. generated, v];
                    // New tokens: generated tokens with the end token. Full sequence (transformers 3.x): prompt + tokens kept.
                    int normalizer = options.Normalization == LengthNormalization.NewTokens ? length : prompt.Count + tokens.Count;
                    double score = total / Math.Pow(normalizer, options.LengthPenalty);
                    if (score > best.Score) best = (tokens, score);
                }
                else
                {
                    Visit([.. generated, v], total);
                }
            }
        }

        Visit([], 0);
        return best;
    }

    private sealed class PrefixHooks : Gpt2Hooks
    {
        private readonly Tensor[] _keys;
        private readonly Tensor[] _values;

        public PrefixHooks(Gpt2Config config, int length)
        {
            var g = new Generator(7);
            _keys = Enumerable.Range(0, config.Layers).Select(_ => randn([1, config.Heads, length, config.HeadDim], generator: g).DetachFromDisposeScope()).ToArray();
            _values = Enumerable.Range(0, config.Layers).Select(_ => randn([1, config.Heads, length, config.HeadDim], generator: g).DetachFromDisposeScope()).ToArray();
            VirtualTokens = length;
        }

        public override int VirtualTokens { get; }

        public override IReadOnlyList<LayerKeyValue>? Prefix(long batchSize, bool training) =>
            _keys.Zip(_values, (k, v) => new LayerKeyValue(k.expand(batchSize, -1, -1, -1), v.expand(batchSize, -1, -1, -1))).ToList();
    }

    private sealed class PromptHooks(Gpt2Config config, int length) : Gpt2Hooks
    {
        private readonly Tensor _prompt = randn([length, config.Width], generator: new Generator(8)).DetachFromDisposeScope();

        public override int VirtualTokens => length;

        public override Tensor? Prompt(long batchSize, bool training) => _prompt.unsqueeze(0);
    }

    private sealed class ProjectionHooks(Gpt2Config config) : Gpt2Hooks
    {
        private readonly Tensor _delta = (randn([config.Width, 3L * config.Width], generator: new Generator(9)) * 0.5).DetachFromDisposeScope();

        public override Tensor Project(int layer, Gpt2Projection site, Linear linear, Tensor input, bool training) =>
            site == Gpt2Projection.AttentionQkv ? linear.forward(input) + input.matmul(_delta) : linear.forward(input);
    }

    /// <summary>Just enough of a method for decoding: hooks or a logit mixture.</summary>
    private sealed class FakeMethod(Gpt2Hooks? hooks, IReadOnlyList<WeightedModel>? mixture = null) : IPeftMethod
    {
        public string Name => "fake";

        public IReadOnlyDictionary<string, string> Options { get; } = new Dictionary<string, string>();

        public bool TrainsBaseWeights => false;

        public bool Trains => false;

        public Gpt2Hooks? Hooks => hooks;

        public CausalLm? TrainedModel => null;

        public IReadOnlyList<WeightedModel>? LogitMixture => mixture;

        public ParameterCounts CountParameters(ModelShape config) => new(0, 0);

        public IReadOnlyList<Parameter> Prepare(CausalLm model, PeftContext context) => [];

        public IReadOnlyList<KeyValuePair<string, Tensor>> StoredTensors() => [];

        public void Load(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
        {
        }

        public void Dispose()
        {
        }
    }
}
