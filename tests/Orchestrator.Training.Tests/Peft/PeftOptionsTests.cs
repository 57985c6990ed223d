using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.Lora;
using Orchestrator.Training.Peft.Prefix;

namespace Orchestrator.Training.Tests.Peft;

public sealed class PeftOptionsTests
{
    [Fact]
    public void Invalid_values_name_the_option_path_and_what_was_expected()
    {
        var e = Assert.Throws<PeftOptionsException>(() =>
            PeftRegistry.Create("lora", new Dictionary<string, string> { ["r"] = "x" }, "methods[0].options"));
        Assert.Contains("methods[0].options.r: expected a positive integer, got 'x'", e.Message);
        Assert.Equal("lora", e.Method);
    }

    [Fact]
    public void All_problems_are_reported_at_once_with_suggestions_for_unknown_options()
    {
        var options = new Dictionary<string, string> { ["rr"] = "4", ["alpha"] = "-1", ["dropout"] = "1.5", ["targets"] = "q,k" };
        var e = Assert.Throws<PeftOptionsException>(() => PeftRegistry.Create("LoRA", options, "methods[2].options"));
        Assert.Equal(4, e.Problems.Count);
        Assert.Contains("methods[2].options.rr: unknown option 'rr' for method 'lora' (did you mean 'r'?); allowed: r, alpha, dropout, targets", e.Problems);
        Assert.Contains("methods[2].options.alpha: expected a positive number, got '-1'", e.Problems);
        Assert.Contains("methods[2].options.dropout: expected a rate in [0, 1), got '1.5'", e.Problems);
        Assert.Contains("methods[2].options.targets: expected q,v, c_attn, all-linear or a comma list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, got 'q,k'", e.Problems);
        Assert.Equal(e.Problems, PeftRegistry.Validate("lora", options, "methods[2].options"));
    }

    [Fact]
    public void Methods_without_options_say_so()
    {
        var problems = PeftRegistry.Validate("bitfit", new Dictionary<string, string> { ["lr"] = "1" });
        Assert.Equal(["options.lr: unknown option 'lr' for method 'bitfit'; bitfit takes no options"], problems);
        Assert.Empty(PeftRegistry.Validate("bitfit", null));
        Assert.Equal(["unknown method 'nope' (known: finetune, ft-top2, adapter, adapter-houlsby, adapter-parallel, prefix, prompt, ptuning, ptuning-v2, lora, bitfit, ia3, llama-adapter, proxy, ln-tuning, head-only, child-tuning-f, child-tuning-d, bbt, adapter-fusion)"],
            PeftRegistry.Validate("nope", null));
    }

    [Fact]
    public void Cross_option_problems_are_reported()
    {
        Assert.Contains("options.init_text: required when init=text", PeftRegistry.Validate("prompt", new Dictionary<string, string> { ["init"] = "text" }));
        Assert.Contains("options.init_text: only used with init=text (init is 'vocab')", PeftRegistry.Validate("prompt", new Dictionary<string, string> { ["init_text"] = "hello" }));
        Assert.Contains("options.layers: expected a positive integer or 'all', got '0'", PeftRegistry.Validate("llama-adapter", new Dictionary<string, string> { ["layers"] = "0" }));
    }

    [Fact]
    public void Options_are_parsed_typed_and_canonical_with_defaults_filled_in()
    {
        using var method = PeftRegistry.Create("lora", new Dictionary<string, string> { ["r"] = " 8 ", ["alpha"] = "1e1", ["targets"] = "C_ATTN" });
        var lora = Assert.IsType<LoraMethod>(method);
        Assert.Equal((8, 10.0, 0.1, "c_attn"), (lora.Rank, lora.Alpha, lora.Dropout, lora.Targets));
        Assert.Equal(new Dictionary<string, string> { ["alpha"] = "10", ["dropout"] = "0.1", ["r"] = "8", ["targets"] = "c_attn" }, method.Options);
        using var defaults = PeftRegistry.Get("lora");
        Assert.Equal(new Dictionary<string, string> { ["alpha"] = "32", ["dropout"] = "0.1", ["r"] = "4", ["targets"] = "q,v" }, defaults.Options);
    }

    [Fact]
    public void Every_method_describes_its_options_and_accepts_its_own_defaults()
    {
        foreach (string name in PeftRegistry.Names)
        {
            var info = PeftRegistry.Describe(name);
            Assert.Equal(name, info.Name);
            Assert.False(string.IsNullOrWhiteSpace(info.Summary));
            Assert.All(info.Options, o => Assert.False(string.IsNullOrWhiteSpace(o.Description)));
            var defaults = info.Options.Where(o => o.Default.Length > 0).ToDictionary(o => o.Name, o => o.Default);
            Assert.Empty(PeftRegistry.Validate(name, defaults));
            using var method = PeftRegistry.Create(name, defaults);
            Assert.Equal(name, method.Name);
        }

        Assert.Equal(["r", "alpha", "dropout", "targets"], PeftRegistry.Describe("lora").Options.Select(o => o.Name));
        Assert.Equal("512", PeftRegistry.Describe("prefix").Options.Single(o => o.Name == "hidden").Default);
    }

    [Fact]
    public void Options_that_do_not_fit_the_model_are_reported_before_training()
    {
        var config = Gpt2Config.Preset("tiny", 20);
        using var top = PeftRegistry.Create("ft-top2", new Dictionary<string, string> { ["layers"] = "3" });
        Assert.Contains("layers=3 exceeds the model's 2 layers", Assert.Throws<ArgumentException>(() => top.CountParameters(config)).Message);
        using var model = new Gpt2Model(config);
        Assert.Throws<ArgumentException>(() => top.Prepare(model));
        using var llama = PeftRegistry.Create("llama-adapter", new Dictionary<string, string> { ["layers"] = "5" });
        Assert.Throws<ArgumentException>(() => llama.CountParameters(config));
    }

    [Fact]
    public void Prefix_with_init_text_takes_its_length_from_the_tokens()
    {
        using var prefix = PeftRegistry.Create("prefix", new Dictionary<string, string> { ["init_text"] = "table-to-text:" });
        var e = Assert.Throws<InvalidOperationException>(() => prefix.CountParameters(Gpt2Config.Preset("gpt2-medium")));
        Assert.Contains("pass length too", e.Message);
        using var both = PeftRegistry.Create("prefix", new Dictionary<string, string> { ["init_text"] = "table-to-text:", ["length"] = "6" });
        Assert.Equal(6L * 49_152, both.CountParameters(Gpt2Config.Preset("gpt2-medium")).Stored);
        Assert.IsType<PrefixMethod>(both);
    }
}
