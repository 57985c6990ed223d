using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"ckpt-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Save_then_load_gives_identical_logits()
    {
        var tokenizer = WordLevelTokenizer.Build(["The Eagle is a pub near Café Rouge, rated 5 out of 5."]);
        var config = Gpt2Config.Preset("tiny", tokenizer.VocabSize);
        using var model = new Gpt2Model(config, seed: 42);
        model.eval();
        ModelCheckpoint.Save(model, config, tokenizer, _dir);
        Assert.True(File.Exists(Path.Combine(_dir, "config.json")));

        using var loaded = ModelCheckpoint.Load(_dir);
        Assert.Equal(config, loaded.Config);
        Assert.Equal(tokenizer.Encode("near Café Rouge"), loaded.Tokenizer.Encode("near Café Rouge"));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(tokenizer.Encode("The Eagle is a pub near Café Rouge, rated 5").Select(i => (long)i).ToArray(), [1, 11]);
        Assert.True(TestData.Identical(model.forward(ids), loaded.Model.forward(ids)));
    }

    [Fact]
    public void Weights_file_uses_the_hugging_face_gpt2_layout()
    {
        var tokenizer = TestData.SymbolTokenizer();
        var config = Gpt2Config.Preset("test", tokenizer.VocabSize);
        using var model = new Gpt2Model(config, seed: 1);
        ModelCheckpoint.Save(model, config, tokenizer, _dir);
        string path = Path.Combine(_dir, "model.safetensors");

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, (8 + headerLength) % 8);
        SafeTensorsHeader header = SafeTensors.ReadHeader(path);
        Assert.Equal("pt", header.Metadata["format"]);
        var byName = header.Tensors.ToDictionary(t => t.Name);
        Assert.Equal(model.parameters().Count(), byName.Count);
        Assert.DoesNotContain("lm_head.weight", byName.Keys);
        Assert.Equal([32L, 96], byName["h.0.attn.c_attn.weight"].Shape); // Conv1D [in, out]
        Assert.Equal([128L, 32], byName["h.0.mlp.c_proj.weight"].Shape);
        Assert.Equal([13L, 32], byName["wte.weight"].Shape);
        Assert.All(byName.Values, t => Assert.Equal("F32", t.DType));
        Assert.Equal(bytes.Length - 8 - headerLength, header.Tensors.Max(t => t.End));

        // Raw data of wte equals the parameter, little-endian F32.
        var wte = byName["wte.weight"];
        float first = BitConverter.ToSingle(bytes, (int)(header.DataOffset + wte.Begin));
        Assert.Equal(model.TokenEmbeddings[0, 0].item<float>(), first);
    }

    [Fact]
    public void Loader_accepts_hub_variants_and_reports_mismatches()
    {
        var tokenizer = TestData.SymbolTokenizer();
        var config = Gpt2Config.Preset("test", tokenizer.VocabSize);
        using var source = new Gpt2Model(config, seed: 1);
        using var scope = NewDisposeScope();
        ModelCheckpoint.Save(source, config, tokenizer, _dir);
        var tensors = SafeTensors.Load(Path.Combine(_dir, "model.safetensors"));

        // Hub style: "transformer." prefix, attention mask buffers, a tied lm_head.
        var hub = tensors.Select(kv => new KeyValuePair<string, Tensor>("transformer." + kv.Key, kv.Value)).ToList();
        hub.Add(new("transformer.h.0.attn.bias", ones(1, 1, 128, 128)));
        hub.Add(new("lm_head.weight", tensors["wte.weight"]));
        string hubPath = Path.Combine(_dir, "hub.safetensors");
        SafeTensors.Save(hubPath, hub);
        using var target = new Gpt2Model(config, seed: 2);
        ModelCheckpoint.LoadWeights(target, hubPath);
        var ids = tensor(new long[] { 3, 4, 5, 6 }, [1, 4]);
        Assert.True(TestData.Identical(source.forward(ids), target.forward(ids)));

        var broken = tensors.Where(kv => kv.Key != "ln_f.bias").ToList();
        broken.Add(new("h.9.extra", zeros(2)));
        string brokenPath = Path.Combine(_dir, "broken.safetensors");
        SafeTensors.Save(brokenPath, broken);
        var e = Assert.Throws<FormatException>(() => ModelCheckpoint.LoadWeights(target, brokenPath));
        Assert.Contains("missing tensor 'ln_f.bias'", e.Message);
        Assert.Contains("unexpected tensor 'h.9.extra'", e.Message);
        foreach (var t in tensors.Values) t.Dispose();
    }

    [Fact]
    public void Safetensors_round_trips_dtypes_and_rejects_garbage()
    {
        TorchRuntime.EnsureAvailable();
        using var scope = NewDisposeScope();
        string path = Path.Combine(_dir, "mixed.safetensors");
        var input = new Dictionary<string, Tensor>
        {
            ["f32"] = tensor(new float[] { 1.5f, -2, 3 }),
            ["i64"] = tensor(new long[] { 1, 2, 3, 4, 5, 6 }, [2, 3]),
            ["bf16"] = tensor(new float[] { 0.5f, 8 }).to_type(ScalarType.BFloat16),
            ["empty"] = zeros(0, 4),
        };
        SafeTensors.Save(path, input, new Dictionary<string, string> { ["k"] = "v" });
        var output = SafeTensors.Load(path);
        Assert.Equal(input.Keys, output.Keys);
        foreach (var (name, t) in input)
        {
            Assert.Equal(t.dtype, output[name].dtype);
            Assert.True(TestData.Identical(t, output[name]), name);
        }

        Assert.Equal("v", SafeTensors.ReadHeader(path).Metadata["k"]);
        foreach (var t in output.Values) t.Dispose();

        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Throws<FormatException>(() => SafeTensors.ReadHeader(path));
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(2L), .. "{]"u8]);
        Assert.Throws<FormatException>(() => SafeTensors.ReadHeader(path));
    }
}
