using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>
/// Methods that add one or more <see cref="Bottleneck"/> modules per block (the adapters). The bottlenecks are kept by site name (e.g. <c>h.3.adapter</c>), and their parameter names (<c>{site}.down.weight</c>, …) are the
/// stored names.
/// </summary>
public abstract class AdapterMethodBase : PeftMethodBase
{
    private readonly Dictionary<string, Bottleneck> _sites = new(StringComparer.Ordinal);

    protected AdapterMethodBase(PeftOptionReader options) : base(options)
    {
    }

    /// <summary>The bottleneck at <paramref name="site"/>, or null.</summary>
    internal Bottleneck? Site(string site) => _sites.GetValueOrDefault(site);

    /// <summary>Creates the sites for <paramref name="model"/> (name → bottleneck, initialised).</summary>
    internal abstract IEnumerable<(string Site, Bottleneck Module)> CreateSites(CausalLm model, Generator generator);

    /// <summary>Base parameters that also train (e.g. Houlsby's LayerNorms); none by default.</summary>
    protected virtual IEnumerable<KeyValuePair<string, Parameter>> TrainedBaseParameters(CausalLm model) => [];

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        using var generator = NewGenerator(context, model);
        foreach (var (site, module) in CreateSites(model, generator))
        {
            _sites.Add(site, Own(module));
        }

        var trainable = new List<Parameter>();
        foreach (var (_, p) in AdapterParameters())
        {
            p.requires_grad = true;
            trainable.Add(p);
        }

        foreach (var (_, p) in TrainedBaseParameters(model))
        {
            p.requires_grad = true;
            trainable.Add(p);
        }

        return trainable;
    }

    private IEnumerable<(string Name, Parameter Parameter)> AdapterParameters()
    {
        foreach (var (site, module) in _sites)
        {
            foreach (var (name, p) in module.named_parameters())
            {
                yield return ($"{site}.{name}", p);
            }
        }
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors()
    {
        var stored = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, p) in AdapterParameters())
        {
            stored.Add(new(name, p));
        }

        stored.AddRange(TrainedBaseParameters(Model!).Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value)));
        return stored;
    }
}
