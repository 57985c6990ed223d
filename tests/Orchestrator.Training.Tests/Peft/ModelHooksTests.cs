using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>
/// The model's hook points against independent equivalences: a prefix made of some tokens' keys/values, or a prompt made of
/// their embeddings, must give the same hidden states as running those tokens in front of the input.
/// </summary>
public sealed class ModelHooksTests
{
    private static readonly Gpt2Config Config = Gpt2Config.Preset("tiny", 30) with { Heads = 4 };

    private sealed class FixedHooks(IReadOnlyList<LayerKeyValue>? prefix, Tensor? prompt) : Gpt2Hooks
    {
        public override int VirtualTokens => (int)(prefix?[0].Length ?? prompt?.shape[1] ?? 0);

        public override IReadOnlyList<LayerKeyValue>? Prefix(long batchSize, bool training) =>
            prefix?.Select(kv => new LayerKeyValue(kv.Key.expand(batchSize, -1, -1, -1), kv.Value.expand(batchSize, -1, -1, -1))).ToList();

        public override Tensor? Prompt(long batchSize, bool training) => prompt;
    }

    [Fact]
    public void Flat_prefix_layout_follows_PEFT_METHODS_section_1()
    {
        using var scope = NewDisposeScope();
        long layers = Config.Layers, heads = Config.Heads, headDim = Config.HeadDim, p = 3;
        var flat = arange(p * PrefixLayout.FlatWidth(Config), dtype: ScalarType.Float32).view(p, -1);
        var perLayer = PrefixLayout.ToLayers(flat, Config, batchSize: 2);
        Assert.Equal((int)layers, perLayer.Count);
        for (int l = 0; l < layers; l++)
        {
            for (int kv = 0; kv < 2; kv++)
            {
                Tensor t = kv == 0 ? perLayer[l].Key : perLayer[l].Value;
                Assert.Equal([2L, heads, p, headDim], t.shape);
                foreach (var (h, pos, j) in new[] { (0L, 0L, 0L), (heads - 1, p - 1, headDim - 1), (1L, 2L, 5L) })
                {
                    long index = ((l * 2 + kv) * heads + h) * headDim + j;
                    Assert.Equal(flat[pos, index].item<float>(), t[1, h, pos, j].item<float>());
                }
            }
        }

        var keysValues = perLayer.Select(kv => (kv.Key.narrow(0, 0, 1), kv.Value.narrow(0, 0, 1))).ToList();
        Assert.True(TestData.Identical(flat, PrefixLayout.FromLayers(keysValues, Config)));
    }

    [Fact]
    public void A_prefix_of_captured_keys_and_values_equals_running_those_tokens_first()
    {
        using var model = new Gpt2Model(Config, seed: 5);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var lead = tensor(new long[] { 7, 8, 9 }, [1, 3]);
        var ids = tensor(new long[] { 3, 4, 5, 6, 10, 11, 12, 13 }, [2, 4]);

        using var capture = new KeyValueCapture(Config);
        model.Hidden(lead, hooks: capture);
        var flat = PrefixLayout.FromLayers(capture.Layers, Config);
        var hooks = new FixedHooks(PrefixLayout.ToLayers(flat, Config, 1), null);
        var withPrefix = model.Hidden(ids, hooks: hooks);

        var together = model.Hidden(cat([lead.expand(2, 3), ids], 1)).narrow(1, 3, 4);
        Assert.Equal([2L, 4, Config.Width], withPrefix.shape);
        Assert.True(withPrefix.allclose(together, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void A_prompt_of_token_embeddings_equals_running_those_tokens_first()
    {
        using var model = new Gpt2Model(Config, seed: 6);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var lead = tensor(new long[] { 7, 8 }, [1, 2]);
        var ids = tensor(new long[] { 3, 4, 5, 10, 11, 12 }, [2, 3]);
        var prompt = model.TokenEmbeddings.index_select(0, lead.view(-1)).unsqueeze(0);
        var withPrompt = model.Hidden(ids, hooks: new FixedHooks(null, prompt));
        var together = model.Hidden(cat([lead.expand(2, 2), ids], 1)).narrow(1, 2, 3);
        Assert.Equal([2L, 3, Config.Width], withPrompt.shape);
        Assert.True(withPrompt.allclose(together, rtol: 1e-4, atol: 1e-5));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Virtual_tokens_with_left_padding_match_the_unpadded_rows(bool prefix)
    {
        using var model = new Gpt2Model(Config, seed: 7);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var lead = tensor(new long[] { 7, 8, 9 }, [1, 3]);
        FixedHooks hooks;
        if (prefix)
        {
            using var capture = new KeyValueCapture(Config);
            model.Hidden(lead, hooks: capture);
            hooks = new FixedHooks(PrefixLayout.ToLayers(PrefixLayout.FromLayers(capture.Layers, Config), Config, 1), null);
        }
        else
        {
            hooks = new FixedHooks(null, model.TokenEmbeddings.index_select(0, lead.view(-1)).unsqueeze(0));
        }

        var alone = model.Hidden(tensor(new long[] { 3, 4 }, [1, 2]), hooks: hooks);
        // Row 1 is left-padded; positions count from each row's first real token; the mask covers the caller's tokens only.
        var padded = model.Hidden(
            tensor(new long[] { 5, 6, 7, 1, 3, 4 }, [2, 3]),
            positionIds: tensor(new long[] { 0, 1, 2, 0, 0, 1 }, [2, 3]),
            attentionMask: tensor(new long[] { 1, 1, 1, 0, 1, 1 }, [2, 3]),
            hooks: hooks);
        Assert.False(padded.isnan().any().item<bool>());
        Assert.True(alone.allclose(padded[1].narrow(0, 1, 2).unsqueeze(0), rtol: 1e-4, atol: 1e-5));
        var first = model.Hidden(tensor(new long[] { 5, 6, 7 }, [1, 3]), hooks: hooks);
        Assert.True(first.allclose(padded.narrow(0, 0, 1), rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Hooks_see_every_projection_sublayer_and_block_in_order()
    {
        using var model = new Gpt2Model(Config, seed: 8);
        model.eval();
        var seen = new List<string>();
        var hooks = new RecordingHooks(seen);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 3, 4, 5 }, [1, 3]);
        var plain = model.Hidden(ids);
        var hooked = model.Hidden(ids, hooks: hooks);
        Assert.True(TestData.Identical(plain, hooked)); // the defaults change nothing
        var expected = new List<string>();
        for (int l = 0; l < Config.Layers; l++)
        {
            expected.AddRange([$"{l}:AttentionQkv", $"{l}:AttentionOutput", $"{l}:Attention", $"{l}:MlpIn", $"{l}:MlpOut", $"{l}:Mlp", $"{l}:block"]);
        }

        Assert.Equal(expected, seen);
    }

    private sealed class RecordingHooks(List<string> seen) : Gpt2Hooks
    {
        public override Tensor Project(int layer, Gpt2Projection site, TorchSharp.Modules.Linear linear, Tensor input, bool training)
        {
            seen.Add($"{layer}:{site}");
            return base.Project(layer, site, linear, input, training);
        }

        public override Tensor Sublayer(int layer, Gpt2Sublayer sublayer, nn.Module block, Tensor input, Tensor output, bool training)
        {
            seen.Add($"{layer}:{sublayer}");
            return output;
        }

        public override Tensor Block(int layer, Tensor hidden, bool training)
        {
            seen.Add($"{layer}:block");
            return hidden;
        }
    }
}
