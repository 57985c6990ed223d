using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.AdapterHoulsby;

/// <summary>
/// Houlsby et al.'s sequential adapter: in every block, on the attention output (after c_proj) and on the MLP output, each
/// before its residual add, a(x) = x + W2·GELU(W1·x + b1) + b2 (no inner LayerNorm; GELU with the tanh approximation).
/// Weights truncated-normal with std 1e-3, biases 0 (near identity). The base's LayerNorms (ln_1, ln_2, ln_f) train too.
/// Parameters: L·(2·(2·d·m + m + d) + 4·d) + 2·d (m=64 on gpt2-medium: 6,444,032, 1.8%).
/// Stored names: <c>h.{i}.adapter_attn.*</c>, <c>h.{i}.adapter_mlp.*</c> and the LayerNorms' base names.
/// </summary>
public sealed class AdapterHoulsbyMethod : AdapterMethodBase
{
    public const string MethodName = "adapter-houlsby";
    private const double InitStd = 1e-3;

    private readonly HoulsbyHooks _hooks;

    private AdapterHoulsbyMethod(PeftOptionReader options) : base(options)
    {
        Size = options.Int("bottleneck", 64, "bottleneck width m of each of the two adapters per block");
        _hooks = new HoulsbyHooks(this);
    }

    /// <summary>Bottleneck width.</summary>
    public int Size { get; }

    public static AdapterHoulsbyMethod Create(PeftOptionReader options) => new(options);

    public override bool TrainsBaseWeights => true;

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long d = config.Width;
        // The base's norms train too: GPT-2's LayerNorms (gain and bias, 4d per layer + 2d), Llama's RMSNorms (gain, 2d + d).
        long norms = config.IsLlama ? config.Layers * 2 * d + d : config.Layers * 4 * d + 2 * d;
        long n = config.Layers * 2 * Shared.Bottleneck.Count(d, Size, layerNorm: false) + norms;
        return new ParameterCounts(n, n);
    }

    protected override IEnumerable<KeyValuePair<string, Parameter>> TrainedBaseParameters(CausalLm model) =>
        model.named_parameters()
            .Where(p => p.name.StartsWith("ln_f.", StringComparison.Ordinal) || p.name.Contains(".ln_", StringComparison.Ordinal)
                || p.name == "norm.weight" || p.name.EndsWith("_layernorm.weight", StringComparison.Ordinal))
            .Select(p => new KeyValuePair<string, Parameter>(p.name, p.parameter));

    internal override IEnumerable<(string Site, Bottleneck Module)> CreateSites(CausalLm model, Generator generator)
    {
        var config = model.Shape;
        for (int i = 0; i < config.Layers; i++)
        {
            foreach (string site in new[] { $"h.{i}.adapter_attn", $"h.{i}.adapter_mlp" })
            {
                var module = new Bottleneck(config.Width, Size, false, config.NormEps, AdapterActivation.GeluTanh, model.Device);
                module.Down.InitNormal(InitStd, generator, truncated: true);
                module.Up.InitNormal(InitStd, generator, truncated: true);
                yield return (site, module);
            }
        }
    }

    private sealed class HoulsbyHooks(AdapterHoulsbyMethod method) : Gpt2Hooks
    {
        private (Bottleneck? Attention, Bottleneck? Mlp)[]? _layers;

        public override Tensor Sublayer(int layer, Gpt2Sublayer sublayer, nn.Module block, Tensor input, Tensor output, bool training)
        {
            _layers ??= Enumerable.Range(0, method.Model!.Shape.Layers)
                .Select(i => (method.Site($"h.{i}.adapter_attn"), method.Site($"h.{i}.adapter_mlp")))
                .ToArray();
            Bottleneck? adapter = sublayer == Gpt2Sublayer.Attention ? _layers[layer].Attention : _layers[layer].Mlp;
            if (adapter is null) return output;
            using var delta = adapter.forward(output);
            return output + delta;
        }
    }
}
