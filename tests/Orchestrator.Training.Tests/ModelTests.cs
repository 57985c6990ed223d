using Orchestrator.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

public sealed class ModelTests
{
    private static readonly Gpt2Config Test = Gpt2Config.Preset("test", vocabSize: 20);

    [Fact]
    public void Presets_have_the_documented_shapes()
    {
        Assert.Equal(new Gpt2Config(12, 12, 768, 50257, 1024), Gpt2Config.Preset("gpt2"));
        Assert.Equal(new Gpt2Config(24, 16, 1024, 50257, 1024), Gpt2Config.Preset("gpt2-medium"));
        Assert.Equal(new Gpt2Config(36, 20, 1280, 50257, 1024), Gpt2Config.Preset("gpt2-large"));
        Assert.Equal(new Gpt2Config(2, 2, 64, 100, 256), Gpt2Config.Preset("tiny", 100));
        Assert.Equal((1, 2, 32), (Test.Layers, Test.Heads, Test.Width));
        Assert.Equal(354_823_168, Gpt2Config.Preset("gpt2-medium").ParameterCount);
        Assert.Equal(124_439_808, Gpt2Config.Preset("gpt2").ParameterCount);
    }

    [Fact]
    public void Unknown_preset_and_invalid_config_give_clear_errors()
    {
        var e = Assert.Throws<ArgumentException>(() => Gpt2Config.Preset("gpt3"));
        Assert.Contains("gpt3", e.Message);
        Assert.Contains("gpt2, gpt2-medium, gpt2-large, small, tiny, test", e.Message);
        var small = Gpt2Config.Preset("small", 4096);
        Assert.Equal((4, 4, 128, 512), (small.Layers, small.Heads, small.Width, small.Positions));
        var bad = Assert.Throws<ArgumentException>(() => new Gpt2Config(1, 3, 32, 10, 16).Validate());
        Assert.Contains("multiple of Heads", bad.Message);
        Assert.Contains("VocabSize", Assert.Throws<ArgumentException>(() => Gpt2Config.Preset("tiny").Validate()).Message);
    }

    [Fact]
    public void Config_json_round_trips_with_hugging_face_keys()
    {
        var config = Gpt2Config.Preset("tiny", 123) with { Dropout = 0.1 };
        string json = config.ToJson();
        Assert.Contains("\"n_embd\": 64", json);
        Assert.Contains("\"activation_function\": \"gelu_new\"", json);
        Assert.Equal(config, Gpt2Config.FromJson(json));
    }

    [Fact]
    public void Parameters_have_hugging_face_names_and_shapes()
    {
        using var model = new Gpt2Model(Test);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(
            [
                "wte.weight", "wpe.weight",
                "h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
                "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.ln_2.weight", "h.0.ln_2.bias",
                "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias",
                "ln_f.weight", "ln_f.bias",
            ],
            shapes.Keys);
        Assert.Equal([20L, 32], shapes["wte.weight"]);
        Assert.Equal([128L, 32], shapes["wpe.weight"]);
        Assert.Equal([96L, 32], shapes["h.0.attn.c_attn.weight"]); // Linear [out, in]; HF Conv1D stores [32, 96]
        Assert.Equal([128L, 32], shapes["h.0.mlp.c_fc.weight"]);
        Assert.Equal(Test.ParameterCount, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Initialisation_follows_gpt2_and_is_deterministic_per_seed()
    {
        var config = Gpt2Config.Preset("tiny", 500);
        using var a = new Gpt2Model(config, seed: 7);
        using var b = new Gpt2Model(config, seed: 7);
        using var c = new Gpt2Model(config, seed: 8);
        var pa = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pc = c.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(pa.Keys, name => Assert.True(TestData.Identical(pa[name], pb[name]), name));
        Assert.False(TestData.Identical(pa["wte.weight"], pc["wte.weight"]));

        Assert.Equal(0.02, pa["wte.weight"].std().item<float>(), 2);
        Assert.Equal(0.02 / Math.Sqrt(2 * config.Layers), pa["h.1.mlp.c_proj.weight"].std().item<float>(), 3);
        Assert.Equal(0.02 / Math.Sqrt(2 * config.Layers), pa["h.0.attn.c_proj.weight"].std().item<float>(), 3);
        Assert.Equal(0.0, pa["h.0.attn.c_attn.bias"].abs().sum().item<float>());
        Assert.Equal(1.0, pa["ln_f.weight"].mean().item<float>());
    }

    [Fact]
    public void Forward_maps_ids_to_logits_with_a_tied_head()
    {
        using var model = new Gpt2Model(Test, seed: 1);
        model.eval();
        using var scope = NewDisposeScope();
        var ids = randint(0, Test.VocabSize, [3, 7], dtype: ScalarType.Int64);
        var logits = model.forward(ids);
        Assert.Equal([3L, 7, Test.VocabSize], logits.shape);
        var hidden = model.Hidden(ids);
        Assert.Equal([3L, 7, Test.Width], hidden.shape);
        Assert.True(logits.allclose(hidden.matmul(model.TokenEmbeddings.t()), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Changing_a_later_token_does_not_change_earlier_logits()
    {
        using var model = new Gpt2Model(Gpt2Config.Preset("tiny", 30), seed: 3);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = tensor(new long[] { 5, 6, 7, 8, 9, 10, 11, 12 }, [1, 8]);
        var b = tensor(new long[] { 5, 6, 7, 8, 9, 29, 28, 27 }, [1, 8]);
        var la = model.forward(a);
        var lb = model.forward(b);
        Assert.True(TestData.Identical(la.narrow(1, 0, 5), lb.narrow(1, 0, 5)));
        Assert.False(la.narrow(1, 5, 1).allclose(lb.narrow(1, 5, 1)));
    }

    [Fact]
    public void Left_padding_with_mask_and_positions_matches_the_unpadded_sequence()
    {
        using var model = new Gpt2Model(Gpt2Config.Preset("tiny", 30), seed: 4);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var alone = model.forward(tensor(new long[] { 3, 4, 5 }, [1, 3]));
        var padded = model.Forward(
            tensor(new long[] { 1, 1, 3, 4, 5 }, [1, 5]),
            positionIds: tensor(new long[] { 0, 0, 0, 1, 2 }, [1, 5]),
            attentionMask: tensor(new long[] { 0, 0, 1, 1, 1 }, [1, 5]));
        Assert.False(padded.isnan().any().item<bool>());
        Assert.True(alone.allclose(padded.narrow(1, 2, 3), rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Past_keys_and_values_are_prepended_and_seen_by_every_query()
    {
        var config = Gpt2Config.Preset("tiny", 30);
        using var model = new Gpt2Model(config, seed: 5);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 3, 4, 5 }, [1, 3]);
        var zeros = Enumerable.Range(0, config.Layers)
            .Select(_ => new LayerKeyValue(torch.zeros(1, config.Heads, 2, config.HeadDim), torch.zeros(1, config.Heads, 2, config.HeadDim)))
            .ToArray();
        var withPast = model.Forward(ids, past: zeros);
        Assert.Equal([1L, 3, 30], withPast.shape);
        // Two zero keys with zero values dilute attention, so the output changes, but stays finite.
        Assert.False(withPast.allclose(model.forward(ids)));
        Assert.True(withPast.isfinite().all().item<bool>());
    }
}
