using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>
/// A linear layer y = x·Wᵀ + b with weight [out, in] whose tensors start uninitialised (empty): the method initialises them
/// from its own generator (TorchSharp's Linear would draw its default init from the global generator).
/// </summary>
internal sealed class PeftLinear : Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public PeftLinear(long inFeatures, long outFeatures, bool hasBias, Device device) : base(nameof(PeftLinear))
    {
        weight = new Parameter(empty(outFeatures, inFeatures, device: device));
        bias = hasBias ? new Parameter(empty(outFeatures, device: device)) : null;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public Parameter? Bias => bias;

    public override Tensor forward(Tensor x) => functional.linear(x, weight, bias);

    /// <summary>PyTorch's default Linear init (kaiming-uniform a=√5 weight, U(±1/√in) bias).</summary>
    public PeftLinear InitDefault(Generator generator)
    {
        PeftInit.KaimingUniformA5(weight, generator);
        if (bias is not null) PeftInit.LinearBias(bias, weight.shape[1], generator);
        return this;
    }

    /// <summary>Weight N(0, std²) (truncated at ±2 std if asked), bias 0.</summary>
    public PeftLinear InitNormal(double std, Generator generator, bool truncated = false)
    {
        if (truncated) PeftInit.TruncatedNormal(weight, std, generator);
        else PeftInit.Normal(weight, std, generator);
        bias?.zero_();
        return this;
    }

    /// <summary>Weight and bias 0.</summary>
    public PeftLinear InitZero()
    {
        weight.zero_();
        bias?.zero_();
        return this;
    }
}

/// <summary>Activation of a bottleneck adapter.</summary>
internal enum AdapterActivation
{
    Relu,

    /// <summary>GELU with the tanh approximation (BERT's and GPT-2's).</summary>
    GeluTanh,
}

/// <summary>
/// A bottleneck: x ↦ up(act(down(LN(x)))) with an optional own LayerNorm (weight 1, bias 0); parameter names
/// <c>ln.*</c>, <c>down.*</c>, <c>up.*</c>. No residual: the caller adds it.
/// </summary>
internal sealed class Bottleneck : Module<Tensor, Tensor>
{
    private readonly LayerNorm? ln;
    private readonly PeftLinear down;
    private readonly PeftLinear up;
    private readonly AdapterActivation _activation;

    public Bottleneck(long width, long bottleneck, bool layerNorm, double layerNormEps, AdapterActivation activation, Device device)
        : base(nameof(Bottleneck))
    {
        _activation = activation;
        if (layerNorm)
        {
            ln = LayerNorm(width, layerNormEps, device: device);
        }

        down = new PeftLinear(width, bottleneck, true, device);
        up = new PeftLinear(bottleneck, width, true, device);
        RegisterComponents();
    }

    public PeftLinear Down => down;

    public PeftLinear Up => up;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor input = ln is null ? x : ln.forward(x);
        Tensor hidden = down.forward(input);
        hidden = _activation == AdapterActivation.Relu ? functional.relu(hidden) : functional.gelu(hidden, TorchSharp.Modules.GELU.Approximate.tanh);
        return up.forward(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>Parameters per bottleneck: 2·width·bottleneck + bottleneck + width (+ 2·width with a LayerNorm).</summary>
    public static long Count(long width, long bottleneck, bool layerNorm) =>
        2 * width * bottleneck + bottleneck + width + (layerNorm ? 2 * width : 0);
}

/// <summary>
/// The flat prefix layout of PEFT_METHODS.md §1: one vector of 2·L·KeyValueHeads·HeadDim per virtual token (2·L·Width on
/// GPT-2; under grouped-query attention one key and one value per key/value head, as PEFT's prefix tuning for Llama).
/// </summary>
internal static class PrefixLayout
{
    /// <summary>Width of one virtual token's flat vector: 2·L·KeyValueHeads·HeadDim.</summary>
    public static long FlatWidth(ModelShape config) => 2L * config.Layers * config.KeyValueWidth;

    /// <summary>
    /// flat [P, 2·L·Width] → per layer (key, value) [B, H, P, HeadDim]: view [P, 2L, H, hd], permute to [2L, H, P, hd];
    /// layer l's key is slice 2l and its value 2l+1 (flat index ((l·2+kv)·H+h)·hd+j). Views (expanded over the batch).
    /// </summary>
    public static IReadOnlyList<LayerKeyValue> ToLayers(Tensor flat, ModelShape config, long batchSize)
    {
        long p = flat.shape[0];
        long heads = config.KeyValueHeads, headDim = config.HeadDim;
        Tensor split = flat.view(p, 2L * config.Layers, heads, headDim).permute(1, 2, 0, 3);
        var layers = new LayerKeyValue[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            Tensor key = split[2 * l].unsqueeze(0).expand(batchSize, heads, p, headDim);
            Tensor value = split[2 * l + 1].unsqueeze(0).expand(batchSize, heads, p, headDim);
            layers[l] = new LayerKeyValue(key, value);
        }

        return layers;
    }

    /// <summary>Per-layer keys/values [1, H, P, hd] (one sequence) → flat [P, 2·L·Width] (inverse of <see cref="ToLayers"/>).</summary>
    public static Tensor FromLayers(IReadOnlyList<(Tensor Key, Tensor Value)> layers, ModelShape config)
    {
        using var scope = NewDisposeScope();
        var slices = new List<Tensor>(2 * layers.Count);
        foreach (var (key, value) in layers)
        {
            slices.Add(key.squeeze(0));
            slices.Add(value.squeeze(0));
        }

        Tensor stacked = stack(slices, 0); // [2L, H, P, hd]
        long p = stacked.shape[2];
        return stacked.permute(2, 0, 1, 3).reshape(p, FlatWidth(config)).contiguous().MoveToOuterDisposeScope();
    }
}

/// <summary>Hooks that record each layer's keys and values (from c_attn) of one forward pass; dispose to free them.</summary>
internal sealed class KeyValueCapture : Gpt2Hooks, IDisposable
{
    private readonly ModelShape _config;
    private readonly (Tensor Key, Tensor Value)[] _layers;

    public KeyValueCapture(ModelShape config)
    {
        _config = config;
        _layers = new (Tensor, Tensor)[config.Layers];
    }

    public IReadOnlyList<(Tensor Key, Tensor Value)> Layers => _layers;

    public override Tensor Project(int layer, Gpt2Projection site, Linear linear, Tensor input, bool training)
    {
        Tensor output = linear.forward(input);
        if (site == Gpt2Projection.AttentionQkv)
        {
            long b = output.shape[0], t = output.shape[1];
            long w = _config.Width;
            Tensor Heads(Tensor part) => part.reshape(b, t, _config.Heads, _config.HeadDim).transpose(1, 2).contiguous().detach().DetachFromDisposeScope();
            _layers[layer].Key?.Dispose();
            _layers[layer].Value?.Dispose();
            _layers[layer] = (Heads(output.narrow(2, w, w)), Heads(output.narrow(2, 2 * w, w)));
        }

        return output;
    }

    public void Dispose()
    {
        foreach (var (k, v) in _layers)
        {
            k?.Dispose();
            v?.Dispose();
        }
    }
}
