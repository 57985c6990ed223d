using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Reference;

/// <summary>
/// Our Llama-family model on transformers-layout checkpoints the test writes, against the float64 forward of
/// <see cref="HfLlamaFixture"/>: logits within 1e-4 and identical greedy continuations (ours with a KV cache, the reference
/// recomputing everything at each step).
/// </summary>
public sealed class LlamaImportTests : IDisposable
{
    private static readonly int[] Ids = [1, 5, 96, 40, 3, 3, 77, 12, 60, 0, 31, 88, 7, 19];

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-llama-");

    public void Dispose() => _root.Delete(recursive: true);

    public static TheoryData<string> Checkpoints() => ["untied-gqa", "llama3-rope", "linear-rope", "qwen2-bias-tied", "sharded-bf16"];

    private (HfLlamaFixture Fixture, string Dir, double[] Inverse) Write(string name)
    {
        string dir = Path.Combine(_root.FullName, name);
        HfLlamaFixture fixture;
        double[] inverse;
        switch (name)
        {
            case "untied-gqa":
                fixture = new HfLlamaFixture(new HfLlamaShape(Heads: 4, KeyValueHeads: 2, Theta: 10000), seed: 1);
                fixture.Write(dir, "F32");
                inverse = fixture.InverseFrequencies(10000, null, 1, 1, 4, 0);
                break;
            case "llama3-rope":
                // original context 16 with head width 16: the 8 frequencies fall in all three bands of the llama3 rule.
                fixture = new HfLlamaFixture(new HfLlamaShape(Heads: 2, KeyValueHeads: 1, Width: 32, Theta: 500,
                    RopeScalingJson: """{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}"""), seed: 2);
                fixture.Write(dir, "F16", rotaryBuffers: true);
                inverse = fixture.InverseFrequencies(500, "llama3", 8, 1, 4, 16);
                break;
            case "linear-rope":
                fixture = new HfLlamaFixture(new HfLlamaShape(Heads: 4, KeyValueHeads: 4, Width: 32, Theta: 100,
                    RopeScalingJson: """{"type": "linear", "factor": 4.0}""", HeadDim: 16), seed: 3);
                fixture.Write(dir, "F32");
                inverse = fixture.InverseFrequencies(100, "linear", 4, 1, 4, 0);
                break;
            case "qwen2-bias-tied":
                fixture = new HfLlamaFixture(new HfLlamaShape(ModelType: "qwen2", Heads: 4, KeyValueHeads: 2, QkvBias: true, Tied: true, Eps: 1e-6, Theta: 1000000), seed: 12);
                fixture.Write(dir, "F32", tiedHeadCopy: true, extraConfig: """, "sliding_window": 32, "use_sliding_window": false, "max_window_layers": 2""");
                File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [2, 9]}""");
                inverse = fixture.InverseFrequencies(1000000, null, 1, 1, 4, 0);
                break;
            case "sharded-bf16":
                fixture = new HfLlamaFixture(new HfLlamaShape(Heads: 4, KeyValueHeads: 1, Layers: 3), seed: 5);
                fixture.Write(dir, "BF16", shards: 3);
                inverse = fixture.InverseFrequencies(10000, null, 1, 1, 4, 0);
                break;
            default:
                throw new ArgumentException(name);
        }

        return (fixture, dir, inverse);
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Logits_match_an_independent_float64_forward(string name)
    {
        var (fixture, dir, inverse) = Write(name);
        using var model = LlamaCheckpoint.Load(dir);
        Assert.Equal(fixture.Shape.KeyValueHeads, model.Config.KeyValueHeads);
        Assert.Equal(fixture.Shape.Tied, model.Config.TieWordEmbeddings);
        Assert.Equal(fixture.Shape.QkvBias, model.Config.QkvBias);

        var expected = fixture.Logits(Ids, inverse);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double[] got = model.forward(tensor(Ids.Select(i => (long)i).ToArray(), [1, Ids.Length])).to_type(ScalarType.Float64).data<double>().ToArray();
        double worst = 0;
        int vocab = fixture.Shape.Vocab;
        for (int t = 0; t < Ids.Length; t++)
            for (int v = 0; v < vocab; v++)
                worst = Math.Max(worst, Math.Abs(got[t * vocab + v] - expected[t, v]));
        Assert.True(worst < 1e-4, $"{name}: max |logit difference| {worst:E2}");
        double spread = expected.Cast<double>().Max() - expected.Cast<double>().Min();
        Assert.True(spread > 2, $"{name}: the fixture's logits should not be trivial (spread {spread:F2})");
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Greedy_continuations_with_a_cache_equal_the_reference(string name)
    {
        var (fixture, dir, inverse) = Write(name);
        using var model = LlamaCheckpoint.Load(dir);
        int[] prompt = [1, 44, 17, 90];
        var eos = model.Config.EosTokenIds ?? [];
        var expected = fixture.Greedy(prompt, 12, inverse, eos.ToHashSet());
        if (eos.Contains(expected[^1])) expected.RemoveAt(expected.Count - 1);
        var actual = TextGenerator.Greedy(new LlamaStepModel(model), prompt, 12, eos.ToArray());
        Assert.Equal(expected, actual);
        Assert.True(expected.Distinct().Count() > 1, $"{name}: a continuation of one repeated token proves little: {string.Join(",", expected)}");
    }

    [Fact]
    public void Qwen2_reads_eos_ids_from_generation_config_and_ignores_a_tied_head_copy()
    {
        var (_, dir, _) = Write("qwen2-bias-tied");
        LlamaConfig config = LlamaCheckpoint.ReadConfig(dir);
        Assert.Equal([2, 9], config.EosTokenIds);
        Assert.Equal(1, config.BosTokenId);
        Assert.Equal("qwen2", config.ModelType);
        Assert.False(config.OutputBias);
        using var model = LlamaCheckpoint.Load(dir);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.StartsWith("lm_head", StringComparison.Ordinal));
    }

    [Fact]
    public void Our_export_reloads_to_the_same_logits()
    {
        var (_, dir, _) = Write("untied-gqa");
        using var model = LlamaCheckpoint.Load(dir);
        string exported = Path.Combine(_root.FullName, "exported");
        LlamaCheckpoint.Save(model, exported);
        var header = SafeTensors.ReadHeader(Path.Combine(exported, "model.safetensors"));
        Assert.Contains(header.Tensors, t => t.Name == "model.layers.1.self_attn.k_proj.weight" && t.Shape.SequenceEqual(new long[] { 16, 32 }));
        Assert.Contains(header.Tensors, t => t.Name == "lm_head.weight");
        using var again = LlamaCheckpoint.Load(exported);
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 1, 2, 3, 4, 5 }, [1, 5]);
        Assert.True(TestData.Identical(model.forward(ids), again.forward(ids)));
    }

    public static TheoryData<string, string> Refusals() => new()
    {
        { """, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}""", "yarn" },
        { """, "rope_scaling": {"type": "dynamic", "factor": 2.0}""", "dynamic" },
        { """, "hidden_act": "gelu" """, "hidden_act" },
        { """, "mlp_bias": true""", "mlp_bias" },
        { """, "partial_rotary_factor": 0.5""", "partial_rotary_factor" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Fields_that_change_the_maths_are_refused_by_name(string extra, string named)
    {
        var fixture = new HfLlamaFixture(new HfLlamaShape(), seed: 7);
        string dir = Path.Combine(_root.FullName, "refused");
        fixture.Write(dir, "F32");
        string path = Path.Combine(dir, "config.json");
        string text = File.ReadAllText(path).TrimEnd();
        // JsonNode rejects duplicate keys, so the fields the fixture wrote are dropped before the refused value is added.
        text = text.Replace("\"hidden_act\": \"silu\",", "").Replace("\"rope_scaling\": null,", "").Replace("\"mlp_bias\": false,", "");
        File.WriteAllText(path, text[..^1] + extra + "}");
        var e = Assert.Throws<NotSupportedException>(() => LlamaCheckpoint.ReadConfig(dir));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void A_mistral_sliding_window_shorter_than_the_context_is_refused_but_a_null_one_is_read()
    {
        var fixture = new HfLlamaFixture(new HfLlamaShape(ModelType: "mistral"), seed: 8);
        string dir = Path.Combine(_root.FullName, "mistral");
        fixture.Write(dir, "F32", extraConfig: """, "sliding_window": 16""");
        var e = Assert.Throws<NotSupportedException>(() => LlamaCheckpoint.ReadConfig(dir));
        Assert.Contains("sliding_window", e.Message);

        fixture.Write(dir, "F32", extraConfig: """, "sliding_window": null""");
        Assert.Equal("mistral", LlamaCheckpoint.ReadConfig(dir).ModelType);
    }

    [Fact]
    public void Missing_and_misshaped_tensors_are_named()
    {
        var fixture = new HfLlamaFixture(new HfLlamaShape(), seed: 9);
        fixture.Tensors.Remove("model.layers.1.mlp.up_proj.weight");
        var (_, values) = fixture.Tensors["model.norm.weight"];
        fixture.Tensors["model.norm.weight"] = ([values.Length - 1], values[1..]);
        string dir = Path.Combine(_root.FullName, "broken");
        fixture.Write(dir, "F32");
        var e = Assert.Throws<FormatException>(() => LlamaCheckpoint.Load(dir));
        Assert.Contains("missing tensor 'model.layers.1.mlp.up_proj.weight'", e.Message);
        Assert.Contains("'model.norm.weight' has shape [31], expected [32]", e.Message);
    }

    [Fact]
    public void A_llama_folder_as_a_training_base_is_refused_with_the_reason()
    {
        var (_, dir, _) = Write("untied-gqa");
        var e = Assert.Throws<FormatException>(() => ModelCheckpoint.Load(dir));
        Assert.Contains("a Llama-family folder as a training base is not implemented yet", e.Message);
    }

    [Fact]
    public void Presets_have_the_published_shapes()
    {
        // SmolLM2-135M: 134,515,008 parameters; Llama-3.2-1B: 1,235,814,400 (both tied), from their published configs.
        Assert.Equal(134_515_008, LlamaConfig.Preset("smollm2-135m").ParameterCount);
        Assert.Equal(1_235_814_400, LlamaConfig.Preset("llama-3.2-1b").ParameterCount);
        var config = LlamaConfig.Preset("llama-tiny", vocabSize: 300);
        using var model = new LlamaModel(config, seed: 3);
        Assert.Equal(config.ParameterCount, model.parameters().Sum(p => p.numel()));
    }
}
