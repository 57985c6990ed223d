using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.Shared;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>
/// Methods on a Llama-family base (grouped-query attention: 4 query heads over 2 key/value heads) against independent
/// equivalences: LoRA and IA3 merged into the base weights by hand give the unmerged method's logits; a prefix made of some
/// tokens' cached keys/values (one per key/value head) or a prompt made of their embeddings gives the same hidden states as
/// running those tokens first.
/// </summary>
public sealed class LlamaMethodTests
{
    private static readonly LlamaConfig Config = new(Layers: 2, Heads: 4, KeyValueHeads: 2, Width: 32, InnerWidth: 48, VocabSize: 40,
        Positions: 64, TieWordEmbeddings: false);

    private sealed class FixedHooks(IReadOnlyList<LayerKeyValue>? prefix, Tensor? prompt) : Gpt2Hooks
    {
        public override int VirtualTokens => (int)(prefix?[0].Length ?? prompt?.shape[1] ?? 0);

        public override IReadOnlyList<LayerKeyValue>? Prefix(long batchSize, bool training) =>
            prefix?.Select(kv => new LayerKeyValue(kv.Key.expand(batchSize, -1, -1, -1), kv.Value.expand(batchSize, -1, -1, -1))).ToList();

        public override Tensor? Prompt(long batchSize, bool training) => prompt;
    }

    private static readonly Tensor Ids = tensor(new long[] { 3, 4, 5, 6, 7, 10, 11, 12, 13, 14 }, [2, 5]);

    /// <summary>Sets every stored tensor of the method to random values (a stand-in for training: B and the scales move off 0 and 1).</summary>
    private static void Perturb(IPeftMethod method, long seed)
    {
        using var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (_, t) in method.StoredTensors())
        {
            t.add_(empty_like(t).normal_(0, 0.3, generator));
        }
    }

    [Fact]
    public void LoRA_on_every_llama_projection_merged_into_the_weights_gives_the_same_logits()
    {
        using var model = new LlamaModel(Config, seed: 5);
        model.eval();
        using var method = PeftRegistry.Create("lora", new Dictionary<string, string> { ["targets"] = "all-linear", ["r"] = "3", ["alpha"] = "6" });
        method.Prepare(model);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var before = model.forward(Ids);
        Assert.True(PeftForward.Logits(method, model, Ids).allclose(before, rtol: 0, atol: 0), "B = 0 must leave the base unchanged");

        Perturb(method, 1);
        var unmerged = PeftForward.Logits(method, model, Ids);
        Assert.False(unmerged.allclose(before, rtol: 1e-3, atol: 1e-3));

        // Merge by hand: W' = W + (α/r)·B·A for each of the 7 modules of every layer (PEFT's merge_and_unload).
        var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value);
        var weights = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(2 * 7 * 2, stored.Count);
        foreach (var (name, a) in stored.Where(kv => kv.Key.EndsWith(".lora_A.weight", StringComparison.Ordinal)))
        {
            string module = name[..^".lora_A.weight".Length];
            Tensor b = stored[module + ".lora_B.weight"];
            weights[module + ".weight"].add_(b.matmul(a), alpha: 6.0 / 3);
        }

        var merged = model.forward(Ids);
        Assert.True(merged.allclose(unmerged, rtol: 1e-4, atol: 1e-5), $"max diff {(merged - unmerged).abs().max().item<float>()}");
    }

    [Fact]
    public void IA3_on_llama_scales_k_v_outputs_and_the_down_proj_input_as_merged_weights_do()
    {
        using var model = new LlamaModel(Config, seed: 6);
        model.eval();
        using var method = PeftRegistry.Get("ia3");
        method.Prepare(model);
        Assert.Equal(
            ["layers.0.self_attn.k_proj.ia3_l", "layers.0.self_attn.v_proj.ia3_l", "layers.0.mlp.down_proj.ia3_l"],
            method.StoredTensors().Select(kv => kv.Key).Take(3));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Perturb(method, 2);
        var unmerged = PeftForward.Logits(method, model, Ids);
        var weights = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, l) in method.StoredTensors())
        {
            string module = name[..^".ia3_l".Length];
            if (module.EndsWith("down_proj", StringComparison.Ordinal)) weights[module + ".weight"].mul_(l.unsqueeze(0)); // input columns
            else weights[module + ".weight"].mul_(l.unsqueeze(1));                                                        // output rows
        }

        var merged = model.forward(Ids);
        Assert.True(merged.allclose(unmerged, rtol: 1e-4, atol: 1e-5), $"max diff {(merged - unmerged).abs().max().item<float>()}");
    }

    [Fact]
    public void A_prefix_of_cached_keys_and_values_per_key_value_head_equals_running_those_tokens_first()
    {
        using var model = new LlamaModel(Config, seed: 7);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var lead = tensor(new long[] { 20, 21, 22 }, [1, 3]);
        var cache = new List<LayerKeyValue>();
        model.Hidden(lead, presents: cache);
        Assert.Equal([1L, Config.KeyValueHeads, 3, Config.HeadDim], cache[0].Key.shape);

        // Through the flat layout a prefix method stores (2·L·KV·hd per virtual token) and back.
        var flat = PrefixLayout.FromLayers(cache.Select(c => (c.Key, c.Value)).ToList(), Config);
        Assert.Equal([3L, 2L * Config.Layers * Config.KeyValueHeads * Config.HeadDim], flat.shape);
        var hooks = new FixedHooks(PrefixLayout.ToLayers(flat, Config, 1), null);
        var withPrefix = model.Hidden(Ids, hooks: hooks);
        var together = model.Hidden(cat([lead.expand(2, 3), Ids], 1)).narrow(1, 3, 5);
        Assert.True(withPrefix.allclose(together, rtol: 1e-4, atol: 1e-5), $"max diff {(withPrefix - together).abs().max().item<float>()}");
    }

    [Fact]
    public void A_prompt_of_token_embeddings_equals_running_those_tokens_first()
    {
        using var model = new LlamaModel(Config, seed: 8);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var lead = tensor(new long[] { 20, 21 }, [1, 2]);
        var prompt = model.TokenEmbeddings.index_select(0, lead.view(-1)).unsqueeze(0);
        var withPrompt = model.Hidden(Ids, hooks: new FixedHooks(null, prompt));
        var together = model.Hidden(cat([lead.expand(2, 2), Ids], 1)).narrow(1, 2, 5);
        Assert.True(withPrompt.allclose(together, rtol: 1e-4, atol: 1e-5), $"max diff {(withPrompt - together).abs().max().item<float>()}");
    }

    [Fact]
    public void LLaMA_adapter_on_llama_matches_a_reference_of_PEFTs_adaption_prompt()
    {
        using var model = new LlamaModel(Config, seed: 9);
        model.eval();
        using var method = PeftRegistry.Create("llama-adapter", new Dictionary<string, string> { ["length"] = "3", ["layers"] = "1" });
        method.Prepare(model);
        Assert.Equal(["layers.1.self_attn.adaption_prompt", "layers.1.self_attn.adaption_gate"], method.StoredTensors().Select(kv => kv.Key));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Assert.True(PeftForward.Logits(method, model, Ids).allclose(model.forward(Ids), rtol: 0, atol: 0), "a zero gate leaves the base unchanged");

        var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value);
        stored["layers.1.self_attn.adaption_gate"].fill_(0.7);
        var adapted = PeftForward.Logits(method, model, Ids);

        // Reference: layer 1's attention output gets o_proj(gate · softmax(q·k_pᵀ/√hd) · v_p), with q the layer's rotated
        // queries and k_p, v_p = k_proj/v_proj of the prompt repeated over each key/value head's query heads. Computed here
        // from the first layer's output by a hook that sees only the block's attention sub-layer.
        var reference = model.Forward(Ids, hooks: new ReferenceAdaption(model, stored["layers.1.self_attn.adaption_prompt"], 0.7));
        Assert.True(adapted.allclose(reference, rtol: 1e-4, atol: 1e-5), $"max diff {(adapted - reference).abs().max().item<float>()}");
    }

    /// <summary>Adds the adaption attention to layer 1's attention output, recomputing q from the normed input.</summary>
    private sealed class ReferenceAdaption(LlamaModel model, Tensor prompt, double gate) : Gpt2Hooks
    {
        public override Tensor Sublayer(int layer, Gpt2Sublayer sublayer, TorchSharp.torch.nn.Module block, Tensor input, Tensor output, bool training)
        {
            if (layer != 1 || sublayer != Gpt2Sublayer.Attention) return output;
            var attention = model.Blocks[1].Attention;
            long b = input.shape[0], t = input.shape[1], heads = Config.Heads, kvHeads = Config.KeyValueHeads, hd = Config.HeadDim;
            var q = attention.Query.forward(input).view(b, t, heads, hd).transpose(1, 2).to_type(ScalarType.Float64);
            // Rotary in float64 from the inverse frequencies, positions 0..t-1, rotate_half convention.
            var inv = tensor(Config.InverseFrequencies().ToArray(), ScalarType.Float64);
            var angles = arange(t, dtype: ScalarType.Float64).unsqueeze(1) * inv.unsqueeze(0);
            var emb = cat([angles, angles], -1);
            var rotated = cat([-q.narrow(-1, hd / 2, hd / 2), q.narrow(-1, 0, hd / 2)], -1);
            q = q * emb.cos() + rotated * emb.sin();
            var k = attention.Key.forward(prompt).view(1, 3, kvHeads, hd).transpose(1, 2).to_type(ScalarType.Float64);
            var v = attention.Value.forward(prompt).view(1, 3, kvHeads, hd).transpose(1, 2).to_type(ScalarType.Float64);
            k = k.repeat_interleave(heads / kvHeads, 1);
            v = v.repeat_interleave(heads / kvHeads, 1);
            var probabilities = nn.functional.softmax(q.matmul(k.transpose(2, 3)) / Math.Sqrt(hd), -1) * gate;
            var merged = probabilities.matmul(v).transpose(1, 2).reshape(b, t, heads * hd).to_type(ScalarType.Float32);
            return output + nn.functional.linear(merged, attention.Output.weight);
        }
    }

    [Fact]
    public void Generate_with_an_adapter_folder_on_a_llama_preset_continues_as_the_base_with_the_method()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"llama-adapter-{Guid.NewGuid():N}");
        try
        {
            using var model = new LlamaModel(LlamaConfig.Preset("llama-tiny", 256), seed: 3);
            model.eval();
            using var method = PeftRegistry.Create("lora", new Dictionary<string, string> { ["targets"] = "all-linear" });
            method.Prepare(model);
            Perturb(method, 4);
            PeftCheckpoint.Save(method, dir);
            int[] prompt = [5, 6, 7];
            var expected = Orchestrator.Training.Decoding.TextGenerator.Greedy(new Orchestrator.Training.Decoding.LlamaStepModel(model, method), prompt, 6, []);
            var plain = Orchestrator.Training.Decoding.TextGenerator.Greedy(new Orchestrator.Training.Decoding.LlamaStepModel(model), prompt, 6, []);
            Assert.NotEqual(plain, expected);

            var result = Orchestrator.Training.Decoding.Generation.Run(
                new Orchestrator.Training.Decoding.GenerateRequest("llama-tiny", null, prompt, MaxNewTokens: 6, Adapter: dir, InitSeed: 3));
            Assert.Equal(expected, result.OutputIds);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("lora")]
    [InlineData("ia3")]
    [InlineData("ptuning-v2")]
    [InlineData("llama-adapter")]
    public void HF_PEFT_export_uses_PEFTs_llama_key_names_and_imports_back_to_the_same_logits(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"llama-hf-{Guid.NewGuid():N}");
        try
        {
            using var model = new LlamaModel(Config, seed: 11);
            model.eval();
            using var method = PeftRegistry.Create(name, name == "ptuning-v2" ? new Dictionary<string, string> { ["length"] = "2" } : null);
            method.Prepare(model);
            Perturb(method, 5);
            Orchestrator.Training.Peft.HuggingFace.HfPeftFormat.Export(method, model, dir);
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!;
            var keys = Orchestrator.Training.Checkpoints.SafeTensors.Load(Path.Combine(dir, "adapter_model.safetensors"), CPU)
                .ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            long kvWidth = Config.KeyValueHeads * Config.HeadDim; // 16
            switch (name)
            {
                case "lora": // PEFT's Llama default q_proj, v_proj; A [r, in], B [out, r]
                    Assert.Equal("[\"q_proj\",\"v_proj\"]", config["target_modules"]!.ToJsonString());
                    Assert.False(config["fan_in_fan_out"]!.GetValue<bool>());
                    Assert.Equal(2 * 2 * 2, keys.Count);
                    Assert.Equal([4L, 32], keys["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"]);
                    Assert.Equal([32L, 4], keys["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"]);
                    Assert.Equal([kvWidth, 4], keys["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]);
                    break;
                case "ia3": // [out, 1] on k/v outputs, [1, in] on the down_proj input
                    Assert.Equal("[\"down_proj\",\"k_proj\",\"v_proj\"]", config["target_modules"]!.ToJsonString());
                    Assert.Equal("[\"down_proj\"]", config["feedforward_modules"]!.ToJsonString());
                    Assert.Equal([kvWidth, 1], keys["base_model.model.model.layers.0.self_attn.k_proj.ia3_l"]);
                    Assert.Equal([kvWidth, 1], keys["base_model.model.model.layers.1.self_attn.v_proj.ia3_l"]);
                    Assert.Equal([1L, 48], keys["base_model.model.model.layers.1.mlp.down_proj.ia3_l"]);
                    Assert.Equal(6, keys.Count);
                    break;
                case "ptuning-v2": // PEFT's prefix under GQA: token_dim = KV·hd, num_attention_heads = KV
                    Assert.Equal("PREFIX_TUNING", config["peft_type"]!.GetValue<string>());
                    Assert.Equal(kvWidth, config["token_dim"]!.GetValue<long>());
                    Assert.Equal(Config.KeyValueHeads, config["num_attention_heads"]!.GetValue<int>());
                    Assert.Equal([2L, 2 * Config.Layers * kvWidth], keys["prompt_embeddings"]);
                    break;
                case "llama-adapter":
                    Assert.Equal([1L, 10, 32], keys["base_model.model.model.layers.0.self_attn.adaption_prompt"]);
                    Assert.Equal([1L], keys["base_model.model.model.layers.1.self_attn.adaption_gate"]);
                    break;
            }

            using var fresh = new LlamaModel(Config, seed: 11);
            fresh.eval();
            using var imported = Orchestrator.Training.Peft.HuggingFace.HfPeftFormat.Import(fresh, dir);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var expected = PeftForward.Logits(method, model, Ids);
            var actual = PeftForward.Logits(imported, fresh, Ids);
            Assert.False(expected.allclose(model.forward(Ids), rtol: 1e-3, atol: 1e-3), "the perturbed method changes the output");
            Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-5), $"max diff {(actual - expected).abs().max().item<float>()}");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
