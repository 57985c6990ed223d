using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>
/// Methods that prepend P trainable key/value pairs to every layer's attention (prefix-tuning, P-tuning v2), in the flat
/// layout of PEFT_METHODS.md §1 (one 2·L·d vector per virtual token). Training form: either a direct table [P, 2·L·d]
/// (N(0,1)) or the reparametrisation Embedding(P, d) (N(0,1)) → Linear(d, hidden) → tanh → Linear(hidden, 2·L·d) (PyTorch's
/// default Linear init). Inference form (after <see cref="PeftMethodBase.Load"/>): the materialised table only, stored as
/// <c>prompt_embeddings</c> [P, 2·L·d]. Real tokens start at position P; dropout (training only) applies to the key/values.
/// </summary>
public abstract class PrefixMethodBase : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    /// <summary>Eval: Li &amp; Liang trained prefix-tuning with the base in eval mode (no dropout).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string StoredName = "prompt_embeddings";

    private readonly PrefixHooks _hooks;
    private Parameter? _table;       // [P, 2Ld]: direct training form, or the loaded inference form
    private Parameter? _embedding;   // [P, d] (reparametrised)
    private PeftLinear? _up;         // d → hidden
    private PeftLinear? _out;        // hidden → 2Ld
    private Tensor? _materialised;
    private int? _resolvedLength;
    private PeftDropout? _dropout;

    protected PrefixMethodBase(PeftOptionReader options) : base(options)
    {
        _hooks = new PrefixHooks(this);
    }

    /// <summary>The configured prefix length (P).</summary>
    protected abstract int ConfiguredLength { get; }

    /// <summary>Whether the training form uses the MLP reparametrisation.</summary>
    public abstract bool Projection { get; }

    /// <summary>Hidden width of the reparametrisation MLP.</summary>
    public abstract int HiddenSize { get; }

    /// <summary>Dropout on the key/values while training.</summary>
    public abstract double Dropout { get; }

    /// <summary>The prefix length in use: the configured one, or the one a text initialisation resolved.</summary>
    public int Length => _resolvedLength ?? ConfiguredLength;

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long p = LengthForCounting();
        long flat = PrefixLayout.FlatWidth(config);
        long stored = p * flat;
        long trainable = Projection
            ? p * config.Width + (config.Width * HiddenSize + HiddenSize) + (HiddenSize * flat + flat)
            : stored;
        return new ParameterCounts(trainable, stored);
    }

    /// <summary>The length used by <see cref="CountParameters"/> (subclasses may refuse when it depends on a tokenizer).</summary>
    protected virtual int LengthForCounting() => Length;

    /// <summary>Sets the length a text initialisation found (before the tensors are created).</summary>
    protected void ResolveLength(int length) => _resolvedLength = length;

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        BeforeCreate(model, context);
        var config = model.Shape;
        long flat = PrefixLayout.FlatWidth(config);
        using var generator = NewGenerator(context, model);
        if (Projection)
        {
            _embedding = Own(new Parameter(empty(Length, config.Width, device: model.Device)));
            PeftInit.Normal(_embedding, 1.0, generator);
            _up = Own(new PeftLinear(config.Width, HiddenSize, true, model.Device)).InitDefault(generator);
            _out = Own(new PeftLinear(HiddenSize, flat, true, model.Device)).InitDefault(generator);
        }
        else
        {
            _table = Own(new Parameter(empty(Length, flat, device: model.Device)));
            PeftInit.Normal(_table, 1.0, generator);
        }

        _dropout = Own(new PeftDropout(Dropout, NewGenerator(context, model, stream: 1)));
        var trainable = TrainingParameters().ToList();
        AfterCreate(model, context, trainable);
        return trainable;
    }

    /// <summary>Runs before the tensors are created (e.g. to resolve the length from a text).</summary>
    protected virtual void BeforeCreate(CausalLm model, PeftContext context)
    {
    }

    /// <summary>Runs after the tensors are created (e.g. a data-dependent initialisation; runs under no_grad).</summary>
    protected virtual void AfterCreate(CausalLm model, PeftContext context, IReadOnlyList<Parameter> trainable)
    {
    }

    private IEnumerable<Parameter> TrainingParameters()
    {
        if (_table is not null) yield return _table;
        if (_embedding is not null) yield return _embedding;
        if (_up is not null) foreach (var p in _up.parameters()) yield return p;
        if (_out is not null) foreach (var p in _out.parameters()) yield return p;
    }

    protected override void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        if (stored.TryGetValue(StoredName, out Tensor? table) && table.dim() == 2)
        {
            ResolveLength((int)table.shape[0]);
        }

        _table = Own(new Parameter(empty(Length, PrefixLayout.FlatWidth(model.Shape), device: model.Device), requires_grad: false));
        CopyStored([new(StoredName, _table)], stored);
    }

    protected override void OnDispose()
    {
        _materialised?.Dispose();
        _materialised = null;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors()
    {
        using var noGrad = no_grad();
        if (_embedding is null)
        {
            return [new(StoredName, _table!)];
        }

        _materialised?.Dispose();
        using (NewDisposeScope())
        {
            _materialised = Flat(training: false).detach().clone().DetachFromDisposeScope();
        }

        return [new(StoredName, _materialised)];
    }

    /// <summary>The flat prefix [P, 2·L·d] (through the MLP in the reparametrised form), with dropout when training.</summary>
    protected Tensor Flat(bool training)
    {
        using var scope = NewDisposeScope();
        Tensor flat;
        if (_embedding is not null)
        {
            flat = _out!.forward(_up!.forward(_embedding).tanh());
        }
        else
        {
            flat = _table!.alias();
        }

        if (training && _dropout is not null)
        {
            flat = _dropout.Apply(flat, training);
        }

        return flat.MoveToOuterDisposeScope();
    }

    private sealed class PrefixHooks(PrefixMethodBase method) : Gpt2Hooks
    {
        public override int VirtualTokens => method.Length;

        public override IReadOnlyList<LayerKeyValue>? Prefix(long batchSize, bool training) =>
            PrefixLayout.ToLayers(method.Flat(training), method.Model!.Shape, batchSize);
    }
}
