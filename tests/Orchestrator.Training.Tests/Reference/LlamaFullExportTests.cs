using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.HuggingFace;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Reference;

/// <summary>
/// A method whose result is a plain model, trained on a tiny Llama checkpoint and exported as a full transformers Llama
/// checkpoint: the safetensors header has transformers' names and shapes (read here from the raw header), config.json is
/// the base's with only torch_dtype changed and the method named, the tokenizer files and generation_config.json are
/// copied, and the folder reloads through our Llama loader to the logits of <see cref="HfLlamaFixture"/>'s float64 forward
/// over the exported weights.
/// </summary>
public sealed class LlamaFullExportTests : IDisposable
{
    private static readonly int[] Ids = [HfLlamaTokenizer.Begin, 32, 104, 105, 32, 119, 111, 114, HfLlamaTokenizer.End, 32, 97];

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-llama-export-");

    public void Dispose() => _root.Delete(recursive: true);

    private (HfLlamaFixture Fixture, string Folder) WriteBase(bool tied)
    {
        var fixture = new HfLlamaFixture(new HfLlamaShape(Vocab: HfLlamaTokenizer.Begin + 1, Tied: tied), seed: 6);
        string folder = Path.Combine(_root.FullName, tied ? "base-tied" : "base");
        fixture.Write(folder, "F16");
        HfLlamaTokenizer.Write(folder, HfLlamaTokenizer.Llama3Template, """{"bos_token": "<|begin_of_text|>", "eos_token": "</s>"}""");
        return (fixture, folder);
    }

    private static readonly List<TrainingExample> Task =
    [
        new("a b", "b a"), new("c d", "d c"), new("e f", "f e"), new("g h", "h g"), new("i j", "j i"), new("k l", "l k"),
    ];

    /// <summary>The raw safetensors header: name → (dtype, shape), and the metadata.</summary>
    private static (Dictionary<string, (string DType, long[] Shape)> Tensors, JsonObject? Metadata) RawHeader(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long length = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(0, 8));
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)length))!.AsObject();
        var tensors = new Dictionary<string, (string, long[])>(StringComparer.Ordinal);
        foreach (var (name, value) in header)
        {
            if (name == "__metadata__") continue;
            tensors[name] = (value!["dtype"]!.GetValue<string>(), value["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray());
        }

        return (tensors, header["__metadata__"] as JsonObject);
    }

    private static double[] Logits(Models.CausalLm model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return model.forward(tensor(Ids.Select(i => (long)i).ToArray(), [1, Ids.Length])).to_type(ScalarType.Float64).data<double>().ToArray();
    }

    private static double MaxDifference(double[] got, double[,] expected)
    {
        double worst = 0;
        int vocab = expected.GetLength(1);
        for (int t = 0; t < expected.GetLength(0); t++)
            for (int v = 0; v < vocab; v++)
                worst = Math.Max(worst, Math.Abs(got[t * vocab + v] - expected[t, v]));
        return worst;
    }

    [Fact]
    public void A_trained_finetune_exports_as_a_transformers_llama_checkpoint_that_reloads_to_the_reference_logits()
    {
        var (fixture, folder) = WriteBase(tied: false);
        using var model = LlamaCheckpoint.Load(folder);
        var tokenizer = LlamaCheckpoint.LoadTokenizer(folder, model.Config);
        using var method = PeftRegistry.Create("finetune", null);
        method.Prepare(model);
        new CausalLmTrainer(model, tokenizer, method).Train(Task, [], new TrainingOptions(3, 3, 1e-2, 0, 0, 1));
        model.eval();
        string exported = Path.Combine(_root.FullName, "exported");
        HfPeftFormat.Export(method, model, exported, folder);

        // transformers' names and shapes, float32, every weight once (lm_head.weight: the base is untied).
        var (tensors, metadata) = RawHeader(Path.Combine(exported, "model.safetensors"));
        var s = fixture.Shape;
        int hd = fixture.HeadDim;
        var expected = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [s.Vocab, s.Width],
            ["model.norm.weight"] = [s.Width],
            ["lm_head.weight"] = [s.Vocab, s.Width],
        };
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            expected[p + "input_layernorm.weight"] = [s.Width];
            expected[p + "post_attention_layernorm.weight"] = [s.Width];
            expected[p + "self_attn.q_proj.weight"] = [s.Heads * hd, s.Width];
            expected[p + "self_attn.k_proj.weight"] = [s.KeyValueHeads * hd, s.Width];
            expected[p + "self_attn.v_proj.weight"] = [s.KeyValueHeads * hd, s.Width];
            expected[p + "self_attn.o_proj.weight"] = [s.Width, s.Heads * hd];
            expected[p + "mlp.gate_proj.weight"] = [s.Inner, s.Width];
            expected[p + "mlp.up_proj.weight"] = [s.Inner, s.Width];
            expected[p + "mlp.down_proj.weight"] = [s.Width, s.Inner];
        }

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected)
        {
            Assert.Equal(shape, tensors[name].Shape);
            Assert.Equal("F32", tensors[name].DType);
        }

        Assert.Equal("pt", metadata?["format"]?.GetValue<string>());

        // config.json: the base's, except torch_dtype (the weights are F32) and the method's name.
        var baseConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(exported, "config.json")))!.AsObject();
        Assert.Equal("float32", config["torch_dtype"]!.GetValue<string>());
        Assert.Equal("finetune", config[HfPeftFormat.MethodKey]!["method"]!.GetValue<string>());
        Assert.Equal(
            baseConfig.Where(kv => kv.Key != "torch_dtype").Select(kv => kv.Key + "=" + kv.Value?.ToJsonString()).Order(StringComparer.Ordinal),
            config.Where(kv => kv.Key is not ("torch_dtype" or HfPeftFormat.MethodKey)).Select(kv => kv.Key + "=" + kv.Value?.ToJsonString()).Order(StringComparer.Ordinal));
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(folder, file)), File.ReadAllBytes(Path.Combine(exported, file)));
        }

        // Reloaded by our loader: the float64 reference forward over the exported weights, and the trained model's logits.
        var reference = new HfLlamaFixture(s, seed: 0);
        var weights = SafeTensors.Load(Path.Combine(exported, "model.safetensors"));
        foreach (var (name, t) in weights)
        {
            reference.Tensors[name] = (t.shape, t.to_type(ScalarType.Float64).data<double>().ToArray());
            t.Dispose();
        }

        double[] inverse = reference.InverseFrequencies(s.Theta, null, 1, 1, 4, 0);
        var expectedLogits = reference.Logits(Ids, inverse);
        using var reloaded = LlamaCheckpoint.Load(exported);
        double[] got = Logits(reloaded);
        Assert.True(MaxDifference(got, expectedLogits) < 1e-4, $"max |logit difference| {MaxDifference(got, expectedLogits):E2}");
        Assert.True(MaxDifference(Logits(model), expectedLogits) < 1e-4);
        Assert.True(MaxDifference(got, fixture.Logits(Ids, inverse)) > 1e-3, "training should have changed the weights");
        Assert.Equal(HfLlamaTokenizer.Begin, LlamaCheckpoint.LoadTokenizer(exported, reloaded.Config).BeginToken);

        // Our importer reads the folder back as the method on the base.
        using var again = LlamaCheckpoint.Load(folder);
        using var imported = HfPeftFormat.Import(again, exported);
        Assert.True(MaxDifference(Logits(again), expectedLogits) < 1e-4);
    }

    [Theory]
    [InlineData("ft-top2")]
    [InlineData("child-tuning-f")]
    [InlineData("child-tuning-d")]
    [InlineData("ln-tuning")]
    public void Every_method_whose_result_is_a_plain_model_reloads_to_the_changed_models_logits(string name)
    {
        var (_, folder) = WriteBase(tied: false);
        using var model = LlamaCheckpoint.Load(folder);
        using var method = PeftRegistry.Create(name, null);
        method.Prepare(model);
        using (no_grad())
        {
            foreach (var p in method.StoredTensors()) p.Value.mul_(1.1);
        }

        double[] before;
        using (var frozen = LlamaCheckpoint.Load(folder)) before = Logits(frozen);
        string exported = Path.Combine(_root.FullName, name);
        HfPeftFormat.Export(method, model, exported, folder);
        using var reloaded = LlamaCheckpoint.Load(exported);
        double[] want = Logits(model), got = Logits(reloaded);
        Assert.Equal(want, got);
        Assert.NotEqual(before, got);
    }

    [Fact]
    public void Head_only_on_a_tied_base_exports_an_untied_lm_head_with_its_trained_weight()
    {
        var (_, folder) = WriteBase(tied: true);
        using var model = LlamaCheckpoint.Load(folder);
        using var method = PeftRegistry.Create("head-only", null);
        method.Prepare(model);
        using (no_grad())
        {
            foreach (var p in method.StoredTensors()) p.Value.add_(0.25);
        }

        string exported = Path.Combine(_root.FullName, "head-only");
        HfPeftFormat.Export(method, model, exported, folder);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(exported, "config.json")))!;
        Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
        using var reloaded = LlamaCheckpoint.Load(exported);
        var head = reloaded.named_parameters().Single(p => p.name == "lm_head.weight").parameter;
        Assert.True(TestData.Identical(method.StoredTensors().Single().Value, head));
        var embed = reloaded.named_parameters().Single(p => p.name == "embed_tokens.weight").parameter;
        Assert.True(TestData.Identical(model.named_parameters().Single(p => p.name == "embed_tokens.weight").parameter, embed));
    }

    [Theory]
    [InlineData("adapter")]
    [InlineData("adapter-houlsby")]
    public void Methods_that_are_not_a_plain_model_are_refused_by_name_and_nothing_is_written(string name)
    {
        var (_, folder) = WriteBase(tied: false);
        using var model = LlamaCheckpoint.Load(folder);
        using var method = PeftRegistry.Create(name, null);
        method.Prepare(model);
        string exported = Path.Combine(_root.FullName, "refused-" + name);
        var e = Assert.Throws<NotSupportedException>(() => HfPeftFormat.Export(method, model, exported, folder));
        Assert.StartsWith(name + " ", e.Message);
        Assert.False(Directory.Exists(exported) && Directory.EnumerateFileSystemEntries(exported).Any());
    }
}
