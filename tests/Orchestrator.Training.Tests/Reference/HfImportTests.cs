using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Reference;

/// <summary>Our GPT-2 on a Hugging Face checkpoint folder the test writes, against a float64 forward written in the test.</summary>
public sealed class HfImportTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-hf-");

    public void Dispose() => _root.Delete(recursive: true);

    public static TheoryData<string, bool, bool, bool> Layouts() => new()
    {
        { "F32", true, true, true },    // save_pretrained style: transformer. prefix, mask buffers, tied lm_head
        { "F32", false, false, false }, // Hub style without buffers
        { "F16", false, true, false },
        { "BF16", true, false, true },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Logits_match_an_independent_float64_forward(string dtype, bool prefix, bool buffers, bool lmHead)
    {
        var fixture = new HfGpt2Fixture(layers: 2, heads: 2, width: 16, vocab: 260, positions: 32, seed: 5);
        string dir = Path.Combine(_root.FullName, $"{dtype}-{prefix}-{buffers}-{lmHead}");
        fixture.Write(dir, dtype, prefix, buffers, lmHead);

        using var checkpoint = ModelCheckpoint.Load(dir);
        Assert.Equal(new Gpt2Config(2, 2, 16, 260, 32), checkpoint.Config);
        Assert.IsType<Gpt2BpeTokenizer>(checkpoint.Tokenizer);
        Assert.Equal(257, checkpoint.Tokenizer.VocabSize);

        int[] ids = [3, 77, 256, 12, 255, 0, 199, 42, 259, 8, 8, 101];
        var expected = fixture.Logits(ids);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var actual = checkpoint.Model.forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length])).to_type(ScalarType.Float64);
        double[] got = actual.data<double>().ToArray();
        double worst = 0;
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < fixture.Vocab; v++)
                worst = Math.Max(worst, Math.Abs(got[t * fixture.Vocab + v] - expected[t, v]));
        Assert.True(worst < 1e-5, $"{dtype}: max |logit difference| {worst:E2}");
        Assert.True(expected.Cast<double>().Max() - expected.Cast<double>().Min() > 1, "the fixture's logits should not be trivial");
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, true, false)]
    [InlineData(false, true, true)]
    [InlineData(true, false, true)]
    public void Config_fields_that_change_the_attention_maths_are_honoured(bool unscaled, bool inverseLayer, bool reorder)
    {
        var fixture = new HfGpt2Fixture(layers: 3, heads: 2, width: 16, vocab: 260, positions: 32, seed: 8)
        {
            ScaleAttnWeights = !unscaled, ScaleAttnByInverseLayerIdx = inverseLayer, ReorderAndUpcastAttn = reorder,
        };
        string dir = Path.Combine(_root.FullName, $"attn-{unscaled}-{inverseLayer}-{reorder}");
        fixture.Write(dir, "F32", false, false, false);
        using var checkpoint = ModelCheckpoint.Load(dir);
        Assert.Equal(!unscaled, checkpoint.Config.ScaleAttentionWeights);
        Assert.Equal(inverseLayer, checkpoint.Config.ScaleByInverseLayerIndex);

        int[] ids = [3, 77, 256, 12, 255, 0, 199, 42];
        var expected = fixture.Logits(ids);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double[] got = checkpoint.Model.forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length])).to_type(ScalarType.Float64).data<double>().ToArray();
        double worst = 0;
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < fixture.Vocab; v++)
                worst = Math.Max(worst, Math.Abs(got[t * fixture.Vocab + v] - expected[t, v]));
        Assert.True(worst < 1e-4, $"max |logit difference| {worst:E2}");

        // The flags matter: the reference without them differs.
        if (unscaled || inverseLayer)
        {
            var plain = new HfGpt2Fixture(layers: 3, heads: 2, width: 16, vocab: 260, positions: 32, seed: 8);
            var other = plain.Logits(ids);
            double gap = 0;
            for (int t = 0; t < ids.Length; t++)
                for (int v = 0; v < fixture.Vocab; v++)
                    gap = Math.Max(gap, Math.Abs(other[t, v] - expected[t, v]));
            Assert.True(gap > 1e-3, $"the scaling should change the logits (gap {gap:E2})");
        }

        // Our export keeps the flags, so a re-load computes the same.
        string again = Path.Combine(_root.FullName, $"attn-export-{unscaled}-{inverseLayer}-{reorder}");
        ModelCheckpoint.Save(checkpoint.Model, checkpoint.Config, checkpoint.Tokenizer, again);
        using var reloaded = ModelCheckpoint.Load(again);
        Assert.Equal(checkpoint.Config, reloaded.Config);
    }

    [Fact]
    public void A_missing_dropout_rate_is_transformers_default_and_a_malformed_flag_is_refused_by_name()
    {
        var fixture = new HfGpt2Fixture(layers: 1, heads: 2, width: 16, vocab: 260, positions: 32, seed: 2) { OmitDropout = true };
        string dir = Path.Combine(_root.FullName, "no-dropout-keys");
        fixture.Write(dir, "F32", false, false, false);
        using (var checkpoint = ModelCheckpoint.Load(dir))
        {
            Assert.Equal(0.1, checkpoint.Config.Dropout);
        }

        string config = File.ReadAllText(Path.Combine(dir, "config.json"));
        File.WriteAllText(Path.Combine(dir, "config.json"), config.Replace("\"vocab_size\"", "\"scale_attn_by_inverse_layer_idx\": \"yes\", \"vocab_size\"", StringComparison.Ordinal));
        var e = Assert.ThrowsAny<Exception>(() => ModelCheckpoint.Load(dir));
        Assert.Contains("scale_attn_by_inverse_layer_idx", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Our_export_is_read_back_by_the_reference_and_by_us()
    {
        // Our writer uses the Hub's layout: the exported names and shapes are exactly those the test wrote, and re-loading
        // gives the same logits.
        var fixture = new HfGpt2Fixture(2, 2, 16, 260, 32, seed: 6);
        string source = Path.Combine(_root.FullName, "source");
        fixture.Write(source, "F32", false, false, false);
        using var loaded = ModelCheckpoint.Load(source);
        string exported = Path.Combine(_root.FullName, "exported");
        ModelCheckpoint.Save(loaded.Model, loaded.Config, loaded.Tokenizer, exported);

        var header = SafeTensors.ReadHeader(Path.Combine(exported, ModelCheckpoint.WeightsFile));
        Assert.Equal(
            fixture.Tensors.Select(t => (t.Key, string.Join("x", t.Value.Shape))).Order(),
            header.Tensors.Select(t => (t.Name, string.Join("x", t.Shape))).Order());
        Assert.All(header.Tensors, t => Assert.Equal("F32", t.DType));
        Assert.True(File.Exists(Path.Combine(exported, "vocab.json")) && File.Exists(Path.Combine(exported, "merges.txt")));
        Assert.False(File.Exists(Path.Combine(exported, ModelCheckpoint.WordLevelTokenizerFile)));

        using var again = ModelCheckpoint.Load(exported);
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 1, 2, 3, 4, 5 }, [1, 5]);
        Assert.True(TestData.Identical(loaded.Model.forward(ids), again.Model.forward(ids)));
    }

    [Fact]
    public void Untied_heads_missing_and_misshaped_tensors_are_refused_with_their_names()
    {
        var fixture = new HfGpt2Fixture(1, 2, 8, 258, 16, seed: 7);
        string dir = Path.Combine(_root.FullName, "bad");
        fixture.Write(dir, "F32", false, false, false);
        string weights = Path.Combine(dir, "model.safetensors");

        var entries = fixture.Tensors.Select(t => (t.Key, "F32", t.Value.Shape, F32(t.Value.Values))).ToList();
        var untied = entries.Append(("lm_head.weight", "F32", fixture.Tensors["wte.weight"].Shape, F32(fixture.Tensors["wte.weight"].Values.Select(v => v + 1).ToArray()))).ToList();
        HfGpt2Fixture.WriteSafetensors(weights, untied);
        var e = Assert.Throws<FormatException>(() => ModelCheckpoint.Load(dir));
        Assert.Contains("untied", e.Message);

        var broken = entries.Where(t => t.Key != "h.0.mlp.c_fc.bias").Select(t => t.Key == "h.0.attn.c_proj.weight" ? (t.Key, t.Item2, new long[] { 8, 4 }, new byte[8 * 4 * 4]) : t).ToList();
        HfGpt2Fixture.WriteSafetensors(weights, broken);
        e = Assert.Throws<FormatException>(() => ModelCheckpoint.Load(dir));
        Assert.Contains("missing tensor 'h.0.mlp.c_fc.bias'", e.Message);
        Assert.Contains("'h.0.attn.c_proj.weight' has shape [8, 4], expected [8, 8]", e.Message);
    }

    [Fact]
    public void A_cached_base_shares_or_copies_its_weights_and_matches_the_reference()
    {
        var fixture = new HfGpt2Fixture(2, 2, 16, 260, 32, seed: 8);
        string dir = Path.Combine(_root.FullName, "cached");
        fixture.Write(dir, "F16", true, true, false);
        var identity = new ModelIdentity(null, dir, 0, ContentHash.OfDirectory(dir));
        using var cache = new BaseModelCache(Path.Combine(_root.FullName, "data"));
        var loaded = cache.Get(identity);
        Assert.Same(loaded, cache.Get(identity));
        Assert.Equal(1, cache.Count);

        int[] ids = [5, 6, 7, 200];
        var expected = fixture.Logits(ids);
        using var shared = loaded.CreateModel(shareWeights: true);
        using var copy = loaded.CreateModel(shareWeights: false);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
        foreach (var model in new[] { shared, copy })
        {
            double[] got = model.forward(input).to_type(ScalarType.Float64).data<double>().ToArray();
            Assert.True(got.Select((g, k) => Math.Abs(g - expected[k / fixture.Vocab, k % fixture.Vocab])).Max() < 1e-5);
        }

        // Aliasing: a change to the cached tensor shows in the shared model only.
        var before = copy.forward(input);
        loaded.Weights["ln_f.bias"].add_(1.0);
        Assert.False(shared.forward(input).allclose(before));
        Assert.True(copy.forward(input).allclose(before));
        loaded.Weights["ln_f.bias"].sub_(1.0);

        File.AppendAllText(Path.Combine(dir, "merges.txt"), "\n");
        using var other = new BaseModelCache(Path.Combine(_root.FullName, "data"));
        var changed = Assert.Throws<FormatException>(() => other.Get(identity));
        Assert.Contains("changed since the sweep was planned", changed.Message);
        Assert.Equal(0, other.Count);
    }

    private static byte[] F32(double[] values) => values.SelectMany(v => BitConverter.GetBytes((float)v)).ToArray();
}
