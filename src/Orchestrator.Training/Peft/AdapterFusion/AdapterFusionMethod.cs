using System.Globalization;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Adapter;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.AdapterFusion;

/// <summary>
/// AdapterFusion (Pfeiffer et al. 2021, "AdapterFusion: Non-Destructive Task Composition for Transfer Learning"): N ≥ 2
/// adapters trained on earlier tasks (the cell's dependencies, <see cref="PeftContext.Dependencies"/>, each an
/// <see cref="AdapterMethod"/> checkpoint) stay frozen, and a per-layer attention over their outputs trains.
/// <para>
/// Per block i, with h the block output [B, T, d] (where <see cref="AdapterMethod"/> applies its adapter): each source n gives
/// o_n = h + adapter_n(h), exactly as <see cref="AdapterMethod"/> computes it. Then q = h·W_Qᵀ + b_Q,
/// k_n = o_n·W_Kᵀ + b_K, s_n = q·k_n / τ per position, a = softmax over n of s, and the block output becomes
/// Σ_n a_n·(o_n·W_Vᵀ + b_V), computed as (Σ_n a_n·o_n)·W_Vᵀ + b_V (the same, as Σ_n a_n = 1). The scores are the plain dot
/// product as in the paper and adapter-transformers' <c>BertFusion</c> (no 1/√d); τ is the option <c>temperature</c>
/// (default 1; adapter-transformers' optional annealing from 50 down to 1 is not implemented). Weights are in
/// nn.Linear layout [out, in].
/// </para>
/// <para>
/// Initialisation (adapter-transformers' <c>init_bert_weights</c> and <c>value_initialized</c>): W_Q and W_K N(0, 0.02),
/// all biases 0; <c>value_init=identity</c> (default) sets W_V to 1 on the diagonal and 1e-6 everywhere else (a constant,
/// not random), so at the start the output is the attention-weighted mean of the adapters' outputs
/// (Σ_n a_n·o_n, plus 1e-6 times the sum of its other coordinates), and with small initial scores a ≈ 1/N: about their
/// plain average. <c>value_init=normal</c>: W_V N(0, 0.02) as the Q and K projections (which at the start discards the
/// residual stream, since o_n contains h).
/// </para>
/// <para>
/// Differences from adapter-transformers (our choices): the keys and values are the adapters' full outputs o_n = h + Δ_n
/// and no residual is added after the fusion, whereas adapter-transformers attends over the deltas Δ_n and adds h after
/// W_V; there is no dropout on the scores. b_K shifts every score of a position by the same q·b_K, so it has no effect
/// (kept for the paper's parameter layout).
/// </para>
/// <para>
/// Regularisation (the paper's §3.2 and adapter-transformers' dynamic fusion config): λ·Σ_layers ‖I − W_V‖²_F is added to
/// the training loss (<see cref="RegularizationLoss"/>), which keeps the value projections near the identity, i.e. the
/// output near a mixture of the adapters' outputs. λ is the option <c>regularization</c>: default 0.01 (adapter-transformers'
/// weight) with <c>value_init=identity</c> and 0 with <c>normal</c>, as adapter-transformers' dynamic and static fusion
/// configurations pair them; 0 turns it off. The reported and dev losses exclude it.
/// </para>
/// <para>
/// Parameters: trainable 3·(d² + d) per layer (75,571,200 on gpt2-medium, 21% of the base); stored the same plus the
/// <c>sources</c> adapters (each 2·d·b + b + 3·d per layer with b = <c>bottleneck</c>), so that a checkpoint rebuilds the
/// method without the dependency folders. Stored names: <c>h.{i}.fusion.{query,key,value}.{weight,bias}</c> and
/// <c>source.{n}.h.{i}.adapter.{ln,down,up}.{weight,bias}</c> (n in the order of the dependencies). Options:
/// <c>sources</c> (N, default 2) and <c>bottleneck</c> (b, default 6) must match the dependencies (they fix the stored
/// count before any weight is read); <c>value_init</c>, <c>temperature</c>, <c>regularization</c>. Not packable (its hook is
/// not row by row).
/// </para>
/// </summary>
public sealed class AdapterFusionMethod : PeftMethodBase
{
    public const string MethodName = "adapter-fusion";

    /// <summary>Off-diagonal entries of W_V with <c>value_init=identity</c> (adapter-transformers' value).</summary>
    public const double ValueOffDiagonal = 1e-6;

    private static readonly string[] Projections = ["query", "key", "value"];

    private readonly FusionHooks _hooks;
    private readonly List<AdapterMethod> _sources = [];
    private PeftLinear[][] _layers = [];
    private Tensor? _identity;

    private AdapterFusionMethod(PeftOptionReader options) : base(options)
    {
        Sources = options.Int("sources", 2, "number of source adapters N (must equal the number of dependencies)", min: 2);
        Bottleneck = options.Int("bottleneck", 6, "bottleneck width b of the source adapters (each dependency must have it)");
        ValueInit = options.Choice("value_init", "identity", "initialisation of W_V (identity: diagonal 1, 1e-6 elsewhere; normal: N(0, 0.02))",
            "identity", "normal");
        Temperature = options.Double("temperature", 1.0, "the scores q·k_n are divided by it before the softmax", min: 0, minExclusive: true);
        // adapter-transformers pairs the identity start with the penalty (its "dynamic" fusion) and the random start without
        // it ("static"): the default follows value_init.
        Regularization = options.Double("regularization", ValueInit == "identity" ? 0.01 : 0,
            "weight λ of λ·Σ‖I − W_V‖² added to the training loss (0: off; default 0.01 with value_init=identity, else 0)", min: 0);
        _hooks = new FusionHooks(this);
    }

    /// <summary>Number of source adapters.</summary>
    public int Sources { get; }

    /// <summary>Bottleneck width of the source adapters.</summary>
    public int Bottleneck { get; }

    /// <summary><c>identity</c> or <c>normal</c>.</summary>
    public string ValueInit { get; }

    /// <summary>Softmax temperature τ.</summary>
    public double Temperature { get; }

    /// <summary>Weight λ of the (I − W_V)² penalty.</summary>
    public double Regularization { get; }

    public static AdapterFusionMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long d = config.Width;
        long fusion = config.Layers * 3 * (d * d + d);
        long adapters = (long)Sources * config.Layers * Shared.Bottleneck.Count(d, Bottleneck, layerNorm: true);
        return new ParameterCounts(fusion, fusion + adapters);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var dependencies = context.Dependencies;
        if (dependencies.Count < 2)
        {
            throw new InvalidOperationException(
                $"{MethodName} needs at least 2 dependencies, the trained 'adapter' cells to fuse; {dependencies.Count} {(dependencies.Count == 1 ? "was" : "were")} given.");
        }

        if (dependencies.Count != Sources)
        {
            throw new InvalidOperationException(
                $"{MethodName}: option sources is {Sources} but {dependencies.Count} dependencies were given ({string.Join(", ", dependencies.Select(d => d.CellKey))}); set sources: {dependencies.Count}.");
        }

        foreach (PeftDependency dependency in dependencies)
        {
            _sources.Add(LoadDependency(model, dependency, context));
        }

        var trainable = CreateFusion(model, context);
        foreach (var p in trainable) p.requires_grad = true;
        return trainable;
    }

    protected override void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        for (int n = 0; n < Sources; n++)
        {
            string prefix = SourcePrefix(n);
            var own = stored.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
            try
            {
                _sources.Add(LoadSource(model, own, context));
            }
            catch (FormatException e)
            {
                throw new FormatException($"Source adapter {n} ('{prefix}*'): {e.Message}", e);
            }
        }

        var fusion = CreateFusion(model, context);
        CopyStored(OnStoredTensors(), stored);
        foreach (var p in fusion) p.requires_grad = false;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors()
    {
        var stored = new List<KeyValuePair<string, Tensor>>();
        for (int i = 0; i < _layers.Length; i++)
        {
            for (int j = 0; j < Projections.Length; j++)
            {
                stored.Add(new($"h.{i}.fusion.{Projections[j]}.weight", _layers[i][j].Weight));
                stored.Add(new($"h.{i}.fusion.{Projections[j]}.bias", _layers[i][j].Bias!));
            }
        }

        for (int n = 0; n < _sources.Count; n++)
        {
            string prefix = SourcePrefix(n);
            stored.AddRange(_sources[n].StoredTensors().Select(kv => new KeyValuePair<string, Tensor>(prefix + kv.Key, kv.Value)));
        }

        return stored;
    }

    /// <summary>λ·Σ_layers ‖I − W_V‖²_F over the trainable value projections (null when λ = 0 or not prepared for training).</summary>
    public override Tensor? RegularizationLoss()
    {
        if (Regularization == 0 || Loaded || _layers.Length == 0) return null;
        Tensor first = _layers[0][2].Weight;
        // Built once (not every step) and kept out of the caller's dispose scope: the method owns it.
        _identity ??= Own(eye(first.shape[0], dtype: first.dtype, device: first.device).DetachFromDisposeScope());
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (PeftLinear[] layer in _layers)
        {
            Tensor term = (_identity - layer[2].Weight).pow(2).sum();
            sum = sum is null ? term : sum + term;
        }

        return (sum! * Regularization).MoveToOuterDisposeScope();
    }

    private static string SourcePrefix(int n) => $"source.{n.ToString(CultureInfo.InvariantCulture)}.";

    /// <summary>Creates and initialises every layer's W_Q, W_K, W_V (with biases); returns their parameters.</summary>
    private List<Parameter> CreateFusion(CausalLm model, PeftContext context)
    {
        var config = model.Shape;
        using var generator = NewGenerator(context, model);
        _layers = new PeftLinear[config.Layers][];
        var parameters = new List<Parameter>();
        for (int i = 0; i < config.Layers; i++)
        {
            var query = Own(new PeftLinear(config.Width, config.Width, true, model.Device)).InitNormal(Gpt2Model.InitStd, generator);
            var key = Own(new PeftLinear(config.Width, config.Width, true, model.Device)).InitNormal(Gpt2Model.InitStd, generator);
            var value = Own(new PeftLinear(config.Width, config.Width, true, model.Device));
            if (ValueInit == "identity")
            {
                value.Weight.fill_(ValueOffDiagonal);
                using var diagonal = value.Weight.diagonal();
                diagonal.fill_(1.0);
                value.Bias!.zero_();
            }
            else
            {
                value.InitNormal(Gpt2Model.InitStd, generator);
            }

            _layers[i] = [query, key, value];
            foreach (var linear in _layers[i])
            {
                parameters.Add(linear.Weight);
                parameters.Add(linear.Bias!);
            }
        }

        return parameters;
    }

    /// <summary>Checks <paramref name="dependency"/> (an <c>adapter</c> of this bottleneck that fits the model) and loads it frozen.</summary>
    private AdapterMethod LoadDependency(CausalLm model, PeftDependency dependency, PeftContext context)
    {
        var options = PeftDependencies.RequireMethod(dependency, AdapterMethod.MethodName, MethodName,
            "AdapterFusion fuses Li & Liang's adapters");
        using (IPeftMethod probe = PeftRegistry.Create(AdapterMethod.MethodName, options, $"{PeftDependencies.Describe(dependency)}: options"))
        {
            int size = ((AdapterMethod)probe).Size;
            if (size != Bottleneck)
            {
                throw new ArgumentException(
                    $"{MethodName}: {PeftDependencies.Describe(dependency)} has bottleneck {size}, but this fusion's option bottleneck is {Bottleneck} (every source must have it; set bottleneck: {size}).");
            }
        }

        Dictionary<string, Tensor> stored = PeftDependencies.LoadTensors(dependency, model.Device, MethodName);
        try
        {
            var config = model.Shape;
            int layers = 0;
            while (stored.ContainsKey($"h.{layers}.adapter.ln.weight")) layers++;
            long width = stored.TryGetValue("h.0.adapter.ln.weight", out Tensor? ln) && ln.dim() == 1 ? ln.shape[0] : -1;
            if (layers != config.Layers || width != config.Width)
            {
                throw new ArgumentException(
                    $"{MethodName}: {PeftDependencies.Describe(dependency)} has adapters for {layers} layers of width {width}; the model has {config.Layers} layers of width {config.Width}.");
            }

            try
            {
                return LoadSource(model, stored, context);
            }
            catch (FormatException e)
            {
                throw new ArgumentException($"{MethodName}: {PeftDependencies.Describe(dependency)} does not fit the model: {e.Message}", e);
            }
        }
        finally
        {
            PeftDependencies.DisposeAll(stored);
        }
    }

    /// <summary>An <see cref="AdapterMethod"/> of this bottleneck in inference form (frozen) from its stored tensors.</summary>
    private AdapterMethod LoadSource(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        var options = new Dictionary<string, string> { ["bottleneck"] = Bottleneck.ToString(CultureInfo.InvariantCulture) };
        var source = Own((AdapterMethod)PeftRegistry.Create(AdapterMethod.MethodName, options));
        source.Load(model, stored, context);
        return source;
    }

    private sealed class FusionHooks(AdapterFusionMethod method) : Gpt2Hooks
    {
        public override Tensor Block(int layer, Tensor hidden, bool training)
        {
            using var scope = NewDisposeScope();
            var sources = method._sources;
            var outputs = new Tensor[sources.Count];
            for (int n = 0; n < outputs.Length; n++)
            {
                outputs[n] = sources[n].Hooks!.Block(layer, hidden, training);
            }

            PeftLinear[] fusion = method._layers[layer];
            Tensor o = stack(outputs, 2);                                   // [B, T, N, d]
            Tensor q = fusion[0].forward(hidden);                           // [B, T, d]
            Tensor k = fusion[1].forward(o);                                // [B, T, N, d]
            Tensor scores = matmul(k, q.unsqueeze(-1)).squeeze(-1);         // [B, T, N]
            if (method.Temperature != 1.0) scores = scores / method.Temperature;
            Tensor weights = scores.softmax(-1);
            Tensor mixed = matmul(weights.unsqueeze(-2), o).squeeze(-2);    // [B, T, d]
            return fusion[2].forward(mixed).MoveToOuterDisposeScope();
        }
    }
}
