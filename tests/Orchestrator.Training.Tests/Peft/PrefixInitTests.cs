using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.Prefix;
using Orchestrator.Training.Peft.Shared;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>Prefix-tuning's low-data initialisation from real words (Li &amp; Liang §6.3, PEFT_METHODS.md §3).</summary>
[Collection(PeftCollection.Name)]
public sealed class PrefixInitTests(PeftTaskFixture fixture, ITestOutputHelper output)
{
    private PrefixMethod Prepared(Gpt2Model model, int steps, string text = "rev a b")
    {
        var method = (PrefixMethod)PeftRegistry.Create("prefix", new Dictionary<string, string>
        {
            ["init_text"] = text, ["hidden"] = "64", ["init_steps"] = steps.ToString(System.Globalization.CultureInfo.InvariantCulture), ["init_lr"] = "0.01",
        });
        method.Prepare(model, new PeftContext(4, fixture.Tokenizer));
        return method;
    }

    [Fact]
    public void The_prefix_is_fitted_to_the_base_key_values_of_the_init_text()
    {
        using var model = fixture.NewBase();
        using var untrained = Prepared(model, 0);
        using var model2 = fixture.NewBase();
        using var fitted = Prepared(model2, 300);
        output.WriteLine($"MSE to the words' key/values: {untrained.InitialisationError:G4} before, {fitted.InitialisationError:G4} after 300 steps");
        Assert.Equal(3, fitted.Length); // "rev a b": 3 tokens
        Assert.Equal(new ParameterCounts(3L * 64 + (64 * 64 + 64) + (64 * 256 + 256), 3L * 256), fitted.CountParameters(fixture.Config));
        Assert.True(fitted.InitialisationError < 0.1 * untrained.InitialisationError);

        // The fitted prefix acts like the words themselves: next-token logits after it ≈ those after the words.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(fixture.Tokenizer.Encode(" c d <|endoftext|>").Select(i => (long)i).ToArray(), [1, 3]);
        var words = tensor(fixture.Tokenizer.Encode(" rev a b c d <|endoftext|>").Select(i => (long)i).ToArray(), [1, 6]);
        var reference = model.Forward(words).narrow(1, 3, 3);
        var withPrefix = PeftForward.Logits(fitted, model2, ids);
        var withRandomPrefix = PeftForward.Logits(untrained, model, ids);
        double fittedGap = (withPrefix - reference).abs().max().item<float>();
        double randomGap = (withRandomPrefix - reference).abs().max().item<float>();
        output.WriteLine($"max logit gap to the words: fitted {fittedGap:G3}, random {randomGap:G3}");
        Assert.True(fittedGap < 0.25 * randomGap);
    }

    [Fact]
    public void Init_text_needs_a_tokenizer_and_a_matching_length()
    {
        using var model = fixture.NewBase();
        using var noTokenizer = PeftRegistry.Create("prefix", new Dictionary<string, string> { ["init_text"] = "a b" });
        Assert.Contains("needs the tokenizer", Assert.Throws<InvalidOperationException>(() => noTokenizer.Prepare(model)).Message);
        using var model2 = fixture.NewBase();
        using var mismatch = PeftRegistry.Create("prefix", new Dictionary<string, string> { ["init_text"] = "a b", ["length"] = "5" });
        var e = Assert.Throws<ArgumentException>(() => mismatch.Prepare(model2, new PeftContext(0, fixture.Tokenizer)));
        Assert.Contains("has 2 tokens but length=5", e.Message);
    }

    [Fact]
    public void Captured_key_values_have_one_flat_vector_per_token()
    {
        using var model = fixture.NewBase();
        using var capture = new KeyValueCapture(fixture.Config);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.Hidden(tensor(new long[] { 3, 4, 5, 6 }, [1, 4]), hooks: capture);
        var flat = PrefixLayout.FromLayers(capture.Layers, fixture.Config);
        Assert.Equal([4L, 2L * fixture.Config.Layers * fixture.Config.Width], flat.shape);
    }
}
