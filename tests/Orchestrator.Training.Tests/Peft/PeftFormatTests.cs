using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.HuggingFace;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>Export/import in the Hugging Face PEFT format (PEFT_METHODS.md §5) and full checkpoints.</summary>
[Collection(PeftCollection.Name)]
public sealed class PeftFormatTests(PeftTaskFixture fixture, ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"peft-format-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    public static TheoryData<string, string, string?> Cases() => new()
    {
        { "lora", "", "LORA" },
        { "lora", "targets=c_attn;r=3;alpha=6", "LORA" },
        { "prefix", "length=3;hidden=16", "PREFIX_TUNING" },
        { "ptuning-v2", "length=2", "PREFIX_TUNING" },
        { "prompt", "length=3", "PROMPT_TUNING" },
        { "ptuning", "length=3", "P_TUNING" },
        { "ptuning", "length=2;encoder=mlp;hidden=16", "P_TUNING" },
        { "ia3", "", "IA3" },
        { "ia3", "targets=k,v", "IA3" },
        { "llama-adapter", "length=3;layers=1", "ADAPTION_PROMPT" },
        { "finetune", "", null },
        { "ft-top2", "layers=1", null },
        { "bitfit", "", null },
        { "ln-tuning", "", null },
        { "head-only", "bias=false", null },
        { "prompt", "length=3;init=text;init_text=a b", "PROMPT_TUNING" },
        { "prompt", "length=2;init=uniform", "PROMPT_TUNING" },
        { "child-tuning-d", "", null },
        { "bbt", "length=2;dim=8", "PROMPT_TUNING" },
    };

    private static Dictionary<string, string> Options(string spec) =>
        spec.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);

    /// <summary>Prepares the method and moves every trainable tensor away from its initialisation (LoRA's B = 0, gates 0, …).</summary>
    private IPeftMethod PreparedAndPerturbed(Gpt2Model model, string name, string options)
    {
        var method = PeftRegistry.Create(name, Options(options));
        var trainable = method.Prepare(model, fixture.Context(name, 3));
        using var noGrad = no_grad();
        using var generator = new Generator(11);
        foreach (var p in trainable)
        {
            p.add_(empty_like(p).normal_(0, 0.05, generator));
        }

        return method;
    }

    private Tensor Logits(IPeftMethod? method, Gpt2Model model)
    {
        var encoded = fixture.Task.Take(6).Select(e => CausalLmFormat.Encode(fixture.Tokenizer, e.Source, e.Target, fixture.Config.Positions)).ToArray();
        using var batch = CausalLmFormat.Collate(encoded, fixture.Tokenizer.Pad);
        using var noGrad = no_grad();
        using var eval = PeftForward.EvalMode(method, model);
        return PeftForward.NextTokenLogits(method, model, batch.InputIds);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Export_then_import_reproduces_the_outputs(string name, string options, string? peftType)
    {
        using var scope = NewDisposeScope();
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, name, options);
        Tensor expected = Logits(method, model);
        Assert.Equal(peftType, HfPeftFormat.PeftTypeOf(method));
        HfPeftFormat.Export(method, model, _dir, "test/tiny-base");

        if (peftType is not null)
        {
            string json = File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile));
            Assert.Empty(PeftConfigRules.Problems(json)); // PEFT's own rules for this type accept it
            var config = JsonNode.Parse(json)!.AsObject();
            Assert.Equal(peftType, config["peft_type"]!.GetValue<string>());
            Assert.Equal("CAUSAL_LM", config["task_type"]!.GetValue<string>());
            Assert.Equal("test/tiny-base", config["base_model_name_or_path"]!.GetValue<string>());
            var keys = config.Select(kv => kv.Key).ToList();
            Assert.Equal(keys.Order(StringComparer.Ordinal), keys); // json.dumps(sort_keys=True)
            var header = SafeTensors.ReadHeader(Path.Combine(_dir, HfPeftFormat.AdapterWeightsFile));
            Assert.Equal("pt", header.Metadata["format"]);
            output.WriteLine(string.Join(", ", header.Tensors.Take(4).Select(t => $"{t.Name} [{string.Join(",", t.Shape)}]")));
        }
        else
        {
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, HfPeftFormat.FullConfigFile)))!.AsObject();
            Assert.Equal(name, config[HfPeftFormat.MethodKey]!["method"]!.GetValue<string>());
            var header = SafeTensors.ReadHeader(Path.Combine(_dir, HfPeftFormat.FullWeightsFile));
            if (name == "head-only")
            {
                // Hugging Face's GPT2LMHeadModel layout: lm_head beside the transformer, untied.
                Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
                Assert.Equal([(long)fixture.Config.VocabSize, fixture.Config.Width], header.Tensors.Single(t => t.Name == "lm_head.weight").Shape);
                Assert.All(header.Tensors.Where(t => !t.Name.StartsWith("lm_head.", StringComparison.Ordinal)), t => Assert.StartsWith("transformer.", t.Name));
            }
            else
            {
                Assert.All(header.Tensors, t => Assert.StartsWith("transformer.", t.Name));
            }

            var c = fixture.Config;
            Assert.Equal([(long)c.Width, 3L * c.Width], header.Tensors.Single(t => t.Name == "transformer.h.0.attn.c_attn.weight").Shape);
        }

        using var fresh = fixture.NewBase();
        using var imported = HfPeftFormat.Import(fresh, _dir, new PeftContext(0, fixture.Tokenizer));
        Tensor actual = Logits(imported, fresh);
        Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-5), $"{name} ({options}): outputs differ after export/import");
    }

    public static TheoryData<string, string, string> Refused() => new()
    {
        { "adapter", "bottleneck=4", "drop its adapter tensors" },
        { "adapter-houlsby", "bottleneck=4", "drop its adapter tensors" },
        { "adapter-parallel", "bottleneck=4", "drop its adapter tensors" },
        { "adapter-fusion", "bottleneck=8", "drop its adapter tensors" },
        { "head-only", "bias=true", "has no bias" },
        { "proxy", "", "expert alone" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_method_whose_folder_would_load_as_something_else_is_refused_and_nothing_is_written(string name, string options, string reason)
    {
        using var scope = NewDisposeScope();
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, name, options);
        var e = Assert.Throws<NotSupportedException>(() => HfPeftFormat.Export(method, model, _dir, "test/tiny-base"));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains("PeftCheckpoint", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir));
    }

    [Fact]
    public void A_text_initialised_prompt_is_labelled_TEXT_only_with_a_tokenizer_and_with_the_text_PEFT_tokenises_to_our_ids()
    {
        using var scope = NewDisposeScope();
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "prompt", "length=4;init=text;init_text=a b c");

        HfPeftFormat.Export(method, model, _dir, "test/tiny-base");
        string json = File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile));
        Assert.Empty(PeftConfigRules.Problems(json));
        var config = JsonNode.Parse(json)!.AsObject();
        Assert.Equal("TEXT", config["prompt_tuning_init"]!.GetValue<string>());
        Assert.Equal("test/tiny-base", config["tokenizer_name_or_path"]!.GetValue<string>());
        // PEFT: tokenizer(prompt_tuning_init_text)["input_ids"], repeated or cut to the virtual tokens; ours: ' ' + text.
        string text = config["prompt_tuning_init_text"]!.GetValue<string>();
        Assert.Equal(" a b c", text); // for GPT-2's BPE " a" and "a" are different tokens: PEFT must see the space
        var peftIds = fixture.Tokenizer.Encode(text);
        var ourIds = fixture.Tokenizer.Encode(" a b c");
        Assert.Equal(ourIds, peftIds);

        // Without a tokenizer PEFT refuses TEXT: the file says RANDOM (PEFT reads it only to initialise a new prompt).
        Directory.Delete(_dir, recursive: true);
        HfPeftFormat.Export(method, model, _dir);
        string bare = File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile));
        Assert.Empty(PeftConfigRules.Problems(bare));
        Assert.Equal("RANDOM", JsonNode.Parse(bare)!["prompt_tuning_init"]!.GetValue<string>());
        Assert.Null(JsonNode.Parse(bare)!["tokenizer_name_or_path"]);

        // What an old export wrote is what PEFT refuses, and the rules say so.
        Assert.Contains(PeftConfigRules.Problems(bare.Replace("\"RANDOM\"", "\"TEXT\"", StringComparison.Ordinal)),
            p => p.Contains("tokenizer_name_or_path can't be None", StringComparison.Ordinal));
    }

    [Fact]
    public void A_vocabulary_sample_is_SAMPLE_VOCAB_only_when_it_covers_every_embedding_row()
    {
        using var scope = NewDisposeScope();
        using (var model = fixture.NewBase())
        using (var method = PreparedAndPerturbed(model, "prompt", "length=3;init=vocab"))
        {
            Assert.Equal(model.Config.VocabSize, ((Orchestrator.Training.Peft.PromptTuning.PromptTuningMethod)method).SampledVocabulary);
            HfPeftFormat.Export(method, model, _dir);
            Assert.Equal("SAMPLE_VOCAB", JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile)))!["prompt_tuning_init"]!.GetValue<string>());
        }

        // A base with more embedding rows than the tokenizer has ids: the sample does not reach them.
        Directory.Delete(_dir, recursive: true);
        using var wider = new Gpt2Model(fixture.Config with { VocabSize = fixture.Config.VocabSize + 8 }, seed: 1);
        using var prompt = PeftRegistry.Create("prompt", Options("length=3;init=vocab"));
        prompt.Prepare(wider, fixture.Context("prompt", 3));
        HfPeftFormat.Export(prompt, wider, _dir);
        string json = File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile));
        Assert.Empty(PeftConfigRules.Problems(json));
        Assert.Equal("RANDOM", JsonNode.Parse(json)!["prompt_tuning_init"]!.GetValue<string>());
    }

    [Fact]
    public void The_PEFT_rules_of_the_test_refuse_what_PEFT_refuses()
    {
        // The validator can fail: each rule on a file PEFT rejects.
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "IA3", "target_modules": ["c_attn"], "feedforward_modules": ["mlp.c_proj"]}"""),
            p => p.Contains("subset", StringComparison.Ordinal));
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "LORA", "r": 4, "target_modules": "c_attn", "layers_to_transform": [0]}"""),
            p => p.Contains("`layers_to_transform` cannot be used", StringComparison.Ordinal));
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "LORA", "r": 0}"""), p => p.Contains("positive", StringComparison.Ordinal));
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 3, "prompt_tuning_init": "TEXT", "tokenizer_name_or_path": "gpt2"}"""),
            p => p.Contains("prompt_tuning_init_text can't be None", StringComparison.Ordinal));
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "P_TUNING", "num_virtual_tokens": 3, "encoder_reparameterization_type": "GRU"}"""),
            p => p.Contains("GRU", StringComparison.Ordinal));
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 3, "task_type": "CAUSAL"}"""),
            p => p.Contains("Invalid task type", StringComparison.Ordinal));
        Assert.Contains(PeftConfigRules.Problems("""{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 3, "orchestrator": 1}"""),
            p => p.Contains("no field 'orchestrator'", StringComparison.Ordinal));
        Assert.Empty(PeftConfigRules.Problems("""{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 3, "task_type": "CAUSAL_LM"}"""));
    }

    [Fact]
    public void Lora_tensors_and_the_exact_q_v_layout_follow_PEFT()
    {
        using var scope = NewDisposeScope();
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "lora", "r=2;alpha=4");
        HfPeftFormat.Export(method, model, _dir);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile)))!.AsObject();
        Assert.Equal(4, config["r"]!.GetValue<int>());            // r' = 2r
        Assert.Equal(8.0, config["lora_alpha"]!.GetValue<double>()); // α' = 2α
        Assert.Equal("c_attn", config["target_modules"]![0]!.GetValue<string>());
        Assert.True(config["fan_in_fan_out"]!.GetValue<bool>());
        Assert.Equal("none", config["bias"]!.GetValue<string>());

        long d = fixture.Config.Width;
        var tensors = SafeTensors.Load(Path.Combine(_dir, HfPeftFormat.AdapterWeightsFile));
        try
        {
            Assert.Equal(2 * fixture.Config.Layers, tensors.Count);
            var a = tensors["base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"];
            var b = tensors["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"];
            Assert.Equal([4L, d], a.shape);
            Assert.Equal([3 * d, 4L], b.shape);
            var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value);
            Assert.True(TestData.Identical(a.narrow(0, 0, 2), stored["h.1.attn.c_attn.q.lora_A.weight"]));
            Assert.True(TestData.Identical(a.narrow(0, 2, 2), stored["h.1.attn.c_attn.v.lora_A.weight"]));
            Assert.True(TestData.Identical(b.narrow(0, 0, d).narrow(1, 0, 2), stored["h.1.attn.c_attn.q.lora_B.weight"]));
            Assert.True(TestData.Identical(b.narrow(0, 2 * d, d).narrow(1, 2, 2), stored["h.1.attn.c_attn.v.lora_B.weight"]));
            Assert.Equal(0f, b.narrow(0, d, d).abs().sum().item<float>());               // k rows
            Assert.Equal(0f, b.narrow(0, 0, d).narrow(1, 2, 2).abs().sum().item<float>()); // q rows, v columns
            Assert.Equal(0f, b.narrow(0, 2 * d, d).narrow(1, 0, 2).abs().sum().item<float>());
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void A_PEFT_lora_folder_written_by_hand_imports_as_the_merged_update()
    {
        // Independent check of LoRA's semantics: W' = W + (α/r)·B·A on c_attn (Linear layout [out, in]).
        using var scope = NewDisposeScope();
        var c = fixture.Config;
        long d = c.Width;
        int r = 2;
        double alpha = 5;
        using var generator = new Generator(21);
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile), $$"""
            {
              "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "gpt2", "bias": "none",
              "fan_in_fan_out": true, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null,
              "layers_to_transform": null, "lora_alpha": {{alpha}}, "lora_dropout": 0.05, "megatron_config": null,
              "modules_to_save": null, "peft_type": "LORA", "r": {{r}}, "rank_pattern": {}, "revision": null,
              "target_modules": ["c_attn"], "task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": false
            }
            """);
        var weights = new List<KeyValuePair<string, Tensor>>();
        for (int i = 0; i < c.Layers; i++)
        {
            weights.Add(new($"base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight", empty(r, d).normal_(0, 0.2, generator)));
            weights.Add(new($"base_model.model.transformer.h.{i}.attn.c_attn.lora_B.weight", empty(3 * d, r).normal_(0, 0.2, generator)));
        }

        SafeTensors.Save(Path.Combine(_dir, HfPeftFormat.AdapterWeightsFile), weights, new Dictionary<string, string> { ["format"] = "pt" });

        using var model = fixture.NewBase();
        using var method = HfPeftFormat.Import(model, _dir);
        Assert.Equal("lora", method.Name);
        Assert.Equal("c_attn", method.Options["targets"]);
        Tensor withLora = Logits(method, model);

        using var merged = fixture.NewBase();
        using (no_grad())
        {
            for (int i = 0; i < c.Layers; i++)
            {
                var linear = merged.Blocks[i].Attention.Qkv;
                linear.weight.add_(weights[2 * i + 1].Value.matmul(weights[2 * i].Value) * (alpha / r));
            }
        }

        Tensor plain = Logits(null, merged);
        Assert.True(withLora.allclose(plain, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void IA3_equals_rescaled_base_weights()
    {
        // Independent check of IA3: l_attn scales c_attn's output rows (weight and bias), l_ff scales mlp.c_proj's input columns.
        using var scope = NewDisposeScope();
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "ia3", "");
        Tensor withIa3 = Logits(method, model);
        var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value);
        using var scaled = fixture.NewBase();
        using (no_grad())
        {
            for (int i = 0; i < fixture.Config.Layers; i++)
            {
                var qkv = scaled.Blocks[i].Attention.Qkv;
                var l = stored[$"h.{i}.attn.c_attn.ia3_l"];
                qkv.weight.mul_(l.unsqueeze(1));
                qkv.bias!.mul_(l);
                scaled.Blocks[i].Mlp.Out.weight.mul_(stored[$"h.{i}.mlp.c_proj.ia3_l"].unsqueeze(0));
            }
        }

        Tensor plain = Logits(null, scaled);
        Assert.True(withIa3.allclose(plain, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Full_checkpoint_of_fine_tuning_is_a_plain_hugging_face_gpt2()
    {
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "bitfit", "");
        HfPeftFormat.Export(method, model, _dir);
        using var plain = new Gpt2Model(fixture.Config, seed: 1);
        ModelCheckpoint.LoadWeights(plain, Path.Combine(_dir, HfPeftFormat.FullWeightsFile));
        using var scope = NewDisposeScope();
        Assert.True(Logits(method, model).allclose(Logits(null, plain), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Prefix_exports_the_materialised_prefix_not_its_MLP()
    {
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "prefix", "length=3;hidden=16");
        HfPeftFormat.Export(method, model, _dir);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, HfPeftFormat.AdapterConfigFile)))!.AsObject();
        var c = fixture.Config;
        Assert.Equal(3, config["num_virtual_tokens"]!.GetValue<int>());
        Assert.Equal(c.Width, config["token_dim"]!.GetValue<int>());
        Assert.Equal(c.Layers, config["num_layers"]!.GetValue<int>());
        Assert.Equal(c.Heads, config["num_attention_heads"]!.GetValue<int>());
        Assert.Equal(1, config["num_transformer_submodules"]!.GetValue<int>());
        Assert.Equal(16, config["encoder_hidden_size"]!.GetValue<int>());
        var header = SafeTensors.ReadHeader(Path.Combine(_dir, HfPeftFormat.AdapterWeightsFile));
        var only = Assert.Single(header.Tensors);
        Assert.Equal("prompt_embeddings", only.Name);
        Assert.Equal([3L, 2L * c.Layers * c.Width], only.Shape);
    }

    [Fact]
    public void Per_head_gated_llama_adapter_has_no_PEFT_type()
    {
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "llama-adapter", "length=2;gate=head");
        var e = Assert.Throws<NotSupportedException>(() => HfPeftFormat.Export(method, model, _dir));
        Assert.Contains("gate=head", e.Message);
    }

    [Fact]
    public void Import_rejects_a_prefix_for_another_shape()
    {
        using var model = fixture.NewBase();
        using var method = PreparedAndPerturbed(model, "ptuning-v2", "length=2");
        HfPeftFormat.Export(method, model, _dir);
        var path = Path.Combine(_dir, HfPeftFormat.AdapterConfigFile);
        File.WriteAllText(path, File.ReadAllText(path).Replace($"\"num_layers\": {fixture.Config.Layers}", "\"num_layers\": 24"));
        using var fresh = fixture.NewBase();
        var e = Assert.Throws<FormatException>(() => HfPeftFormat.Import(fresh, _dir));
        Assert.Contains("num_layers is 24", e.Message);
    }
}
