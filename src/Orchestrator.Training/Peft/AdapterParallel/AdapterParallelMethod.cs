using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.AdapterParallel;

/// <summary>
/// He et al.'s parallel adapter on the feed-forward sub-layer: MLP(x') + s·(W_up·ReLU(W_down·x' + b_d) + b_u), where x' is
/// the MLP's input (after ln_2; the exact tap point in GPT-2 was not verified, see PEFT_METHODS.md §6). No LayerNorm;
/// "lora" init: W_down kaiming-uniform (a=√5), W_up = 0, biases 0, so the base output is unchanged at initialisation.
/// Parameters per layer 2·d·b + b + d (b=512: 25,202,688 on gpt2-medium, 7.1%).
/// Stored names: <c>h.{i}.adapter_parallel.{down,up}.{weight,bias}</c>.
/// </summary>
public sealed class AdapterParallelMethod : AdapterMethodBase
{
    public const string MethodName = "adapter-parallel";

    private readonly ParallelHooks _hooks;

    private AdapterParallelMethod(PeftOptionReader options) : base(options)
    {
        Size = options.Int("bottleneck", 512, "bottleneck width b");
        Scale = options.Double("scale", 4.0, "scaling s of the branch", 0, minExclusive: true);
        _hooks = new ParallelHooks(this);
    }

    /// <summary>Bottleneck width.</summary>
    public int Size { get; }

    public double Scale { get; }

    public static AdapterParallelMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long n = config.Layers * Shared.Bottleneck.Count(config.Width, Size, layerNorm: false);
        return new ParameterCounts(n, n);
    }

    internal override IEnumerable<(string Site, Bottleneck Module)> CreateSites(CausalLm model, Generator generator)
    {
        var config = model.Shape;
        for (int i = 0; i < config.Layers; i++)
        {
            var module = new Bottleneck(config.Width, Size, false, config.NormEps, AdapterActivation.Relu, model.Device);
            PeftInit.KaimingUniformA5(module.Down.Weight, generator);
            module.Down.Bias!.zero_();
            module.Up.InitZero();
            yield return ($"h.{i}.adapter_parallel", module);
        }
    }

    private sealed class ParallelHooks(AdapterParallelMethod method) : Gpt2Hooks
    {
        private Bottleneck?[]? _layers;

        public override Tensor Sublayer(int layer, Gpt2Sublayer sublayer, nn.Module block, Tensor input, Tensor output, bool training)
        {
            if (sublayer != Gpt2Sublayer.Mlp) return output;
            _layers ??= Enumerable.Range(0, method.Model!.Shape.Layers).Select(i => method.Site($"h.{i}.adapter_parallel")).ToArray();
            Bottleneck? adapter = _layers[layer];
            if (adapter is null) return output;
            using var delta = adapter.forward(input);
            return output + delta * method.Scale;
        }
    }
}
