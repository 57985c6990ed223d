using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft;

/// <summary>
/// Common plumbing of the methods: options, idempotent <see cref="Prepare"/> (freezes the whole base first), ownership and
/// disposal of the method's modules, and checked loading of stored tensors.
/// </summary>
public abstract class PeftMethodBase : IPeftMethod
{
    private readonly List<IDisposable> _owned = [];
    private IReadOnlyList<Parameter>? _trainable;
    private bool _ignoreExtra;
    private bool _disposed;

    protected PeftMethodBase(PeftOptionReader options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Name = options.Method;
        Options = options.Effective;
    }

    public string Name { get; }

    public IReadOnlyDictionary<string, string> Options { get; }

    public virtual bool TrainsBaseWeights => false;

    /// <inheritdoc />
    public virtual string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutGpt2;

    public virtual bool Trains => true;

    public virtual Gpt2Hooks? Hooks => null;

    public virtual CausalLm? TrainedModel => null;

    public virtual IReadOnlyList<WeightedModel>? LogitMixture => null;

    public virtual bool GradientFree => false;

    public virtual bool HandlesWeightDecay => false;

    /// <summary>Default: nothing to do before training.</summary>
    public virtual void OnBeforeTraining(PeftTrainingContext context)
    {
    }

    /// <summary>Default: the gradients go to the optimizer unchanged.</summary>
    public virtual void TransformGradients(GradientStep step)
    {
    }

    /// <summary>Default: no penalty beyond the language-model loss.</summary>
    public virtual Tensor? RegularizationLoss() => null;

    /// <summary>Default: not a gradient-free method.</summary>
    public virtual GradientFreeResult GradientFreeStep(PeftTrainingContext context, int step, IReadOnlyList<int> batch) =>
        throw new NotSupportedException($"PEFT method '{Name}' trains with gradients; GradientFreeStep is only for gradient-free methods.");

    /// <summary>The model this method was prepared or loaded for (null before).</summary>
    protected CausalLm? Model { get; private set; }

    /// <summary>True after <see cref="Load"/> (inference form).</summary>
    protected bool Loaded { get; private set; }

    public abstract ParameterCounts CountParameters(ModelShape config);

    /// <summary>Default: every family and shape (methods that cannot train on some say why).</summary>
    public virtual string? RefusalFor(ModelShape shape) => null;

    /// <summary>
    /// Checks the options against the model's shape before Prepare/Load: the method's <see cref="RefusalFor"/>, then
    /// <see cref="CountParameters"/>, which throws on a misfit.
    /// </summary>
    protected virtual void ValidateConfig(ModelShape config)
    {
        ThrowIfRefused(config);
        CountParameters(config);
    }

    /// <summary>Throws <see cref="ArgumentException"/> with the reason when <see cref="RefusalFor"/> refuses <paramref name="shape"/>.</summary>
    protected void ThrowIfRefused(ModelShape shape)
    {
        if (RefusalFor(shape) is { } reason)
        {
            throw new ArgumentException($"{Name} on a {shape.FamilyName} base: {reason}.");
        }
    }

    public IReadOnlyList<Parameter> Prepare(CausalLm model, PeftContext context)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(context);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_trainable is not null && ReferenceEquals(model, Model))
        {
            return _trainable;
        }

        Attach(model);
        ValidateConfig(model.Shape);
        using (no_grad())
        {
            _trainable = OnPrepare(model, context);
        }

        return _trainable;
    }

    public void Load(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context) => Load(model, stored, context, ignoreExtra: false);

    /// <summary>
    /// <see cref="Load(CausalLm, IReadOnlyDictionary{string, Tensor}, PeftContext)"/>; with <paramref name="ignoreExtra"/>
    /// tensors the method does not store are ignored (a full checkpoint also holds the untouched base weights).
    /// </summary>
    public void Load(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context, bool ignoreExtra)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(context);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Attach(model);
        ValidateConfig(model.Shape);
        _ignoreExtra = ignoreExtra;
        try
        {
            using (no_grad())
            {
                OnLoad(model, stored, context);
            }
        }
        finally
        {
            _ignoreExtra = false;
        }

        Loaded = true;
        _trainable = [];
    }

    public IReadOnlyList<KeyValuePair<string, Tensor>> StoredTensors()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Model is null)
        {
            throw new InvalidOperationException($"PEFT method '{Name}' has not been prepared or loaded.");
        }

        return OnStoredTensors();
    }

    /// <summary>Creates the method's parameters for <paramref name="model"/> (the base is already frozen; runs under no_grad).</summary>
    protected abstract IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context);

    /// <summary>The stored tensors (see <see cref="IPeftMethod.StoredTensors"/>).</summary>
    protected abstract IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors();

    /// <summary>
    /// Builds the inference form from <paramref name="stored"/> (runs under no_grad). The default prepares the training
    /// form with seed 0 and copies the stored tensors into the tensors of the same names (<see cref="CopyStored"/>).
    /// </summary>
    protected virtual void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        _trainable = OnPrepare(model, context);
        CopyStored(OnStoredTensors(), stored);
        foreach (var p in _trainable) p.requires_grad = false;
    }

    /// <summary>Copies each of <paramref name="stored"/> into the target of the same name; all names and shapes must match.</summary>
    protected void CopyStored(IReadOnlyList<KeyValuePair<string, Tensor>> targets, IReadOnlyDictionary<string, Tensor> stored)
    {
        var problems = new List<string>();
        var expected = targets.Select(t => t.Key).ToHashSet(StringComparer.Ordinal);
        if (!_ignoreExtra)
        {
            problems.AddRange(stored.Keys.Where(k => !expected.Contains(k)).Order(StringComparer.Ordinal).Select(k => $"unexpected tensor '{k}'"));
        }

        foreach (var (name, target) in targets)
        {
            if (!stored.TryGetValue(name, out Tensor? source))
            {
                problems.Add($"missing tensor '{name}'");
            }
            else if (!source.shape.SequenceEqual(target.shape))
            {
                problems.Add($"'{name}' has shape [{string.Join(", ", source.shape)}], expected [{string.Join(", ", target.shape)}]");
            }
        }

        if (problems.Count > 0)
        {
            throw new FormatException("The stored tensors do not fit the method: " + string.Join("; ", problems) + ".");
        }

        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            target.copy_(stored[name]);
        }
    }

    /// <summary>Registers something the method must dispose (its modules, extra models).</summary>
    protected T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    /// <summary>A private generator seeded from the context (the global torch generator is neither used nor advanced).</summary>
    protected static Generator NewGenerator(PeftContext context, CausalLm model, ulong stream = 0) =>
        new(unchecked((ulong)context.Seed * 0x9E3779B97F4A7C15UL + 0x5EED + stream), model.Device);

    private void Attach(CausalLm model)
    {
        if (Model is not null)
        {
            throw new InvalidOperationException($"PEFT method '{Name}' is already attached to a model; create a new instance for another.");
        }

        Model = model;
        foreach (Parameter p in model.parameters())
        {
            p.requires_grad = false;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _owned.Clear();
        OnDispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees what the method holds besides its owned modules (e.g. a materialised table).</summary>
    protected virtual void OnDispose()
    {
    }

    /// <summary>Name → parameter of the base model.</summary>
    protected static Dictionary<string, Parameter> BaseParameters(CausalLm model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
}
