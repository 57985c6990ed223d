using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Adapter;

/// <summary>
/// Li &amp; Liang's adapter baseline (Lin et al. 2020): after each block, h ← h + W_up·ReLU(W_down·LN_a(h) + b_d) + b_u with its
/// own trainable LayerNorm LN_a. Weights N(0, 0.02), biases 0, LN_a weight 1 and bias 0; only the adapters train.
/// Parameters per layer: 2·d·b + b + 3·d (b=6: 368,784 on gpt2-medium, 0.10%; b=224: 11,089,152, 3.1%).
/// Stored names: <c>h.{i}.adapter.{ln,down,up}.{weight,bias}</c>.
/// </summary>
public sealed class AdapterMethod : AdapterMethodBase
{
    public const string MethodName = "adapter";

    private readonly AdapterHooks _hooks;

    private AdapterMethod(PeftOptionReader options) : base(options)
    {
        Size = options.Int("bottleneck", 6, "bottleneck width b (6 ≈ 0.1% of gpt2-medium, 224 ≈ 3%)");
        _hooks = new AdapterHooks(this);
    }

    /// <summary>Bottleneck width.</summary>
    public int Size { get; }

    public static AdapterMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long n = config.Layers * Shared.Bottleneck.Count(config.Width, Size, layerNorm: true);
        return new ParameterCounts(n, n);
    }

    internal override IEnumerable<(string Site, Bottleneck Module)> CreateSites(CausalLm model, Generator generator)
    {
        var config = model.Shape;
        for (int i = 0; i < config.Layers; i++)
        {
            var module = new Bottleneck(config.Width, Size, true, config.NormEps, AdapterActivation.Relu, model.Device);
            module.Down.InitNormal(Gpt2Model.InitStd, generator);
            module.Up.InitNormal(Gpt2Model.InitStd, generator);
            yield return ($"h.{i}.adapter", module);
        }
    }

    private sealed class AdapterHooks(AdapterMethod method) : Gpt2Hooks
    {
        private Bottleneck?[]? _layers;

        public override Tensor Block(int layer, Tensor hidden, bool training)
        {
            _layers ??= Enumerable.Range(0, method.Model!.Shape.Layers).Select(i => method.Site($"h.{i}.adapter")).ToArray();
            Bottleneck? adapter = _layers[layer];
            if (adapter is null) return hidden;
            using var delta = adapter.forward(hidden);
            return hidden + delta;
        }
    }
}
