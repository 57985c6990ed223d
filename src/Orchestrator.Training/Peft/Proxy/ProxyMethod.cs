using System.Text;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Proxy;

/// <summary>
/// Proxy-tuning (Liu et al. 2024) as a decoding-time method: next-token logits = s_base + α·(s_expert − s_anti-expert), the
/// expert's and anti-expert's logits cut to the base vocabulary; each model keeps its own cache; greedy decoding.
/// <para>
/// <c>anti_expert</c>: <c>base</c> (default: the cell's base itself) or a model folder (a smaller untuned model with the
/// same tokenizer). <c>expert</c>: <c>train</c> (default: a copy of the anti-expert fully fine-tuned on the cell's training
/// data by the trainer; the base stays frozen) or a model folder of an already tuned expert (then nothing trains).
/// Trainable: the expert's parameters (when trained); stored: the expert's parameters (<c>expert.{name}</c>).
/// With the defaults (anti-expert = base, α = 1) the combination equals the expert: proxy-tuning needs a smaller
/// anti-expert to mean anything.
/// </para>
/// </summary>
public sealed class ProxyMethod : PeftMethodBase
{
    public const string MethodName = "proxy";
    public const string Base = "base";
    public const string Train = "train";
    private const string StoredPrefix = "expert.";

    private Gpt2Model? _expert;
    private Gpt2Model? _anti;
    private List<KeyValuePair<string, Tensor>> _stored = [];
    private IReadOnlyList<WeightedModel>? _mixture;

    private ProxyMethod(PeftOptionReader options) : base(options)
    {
        Alpha = options.Double("alpha", 1.0, "weight α of (expert − anti-expert)", 0);
        Expert = options.Text("expert", Train, "'train' (fine-tune a copy of the anti-expert on the cell's data) or a model folder of a tuned expert") ?? Train;
        AntiExpert = options.Text("anti_expert", Base, "'base' (the cell's base) or a model folder of the untuned small model") ?? Base;
    }

    public double Alpha { get; }

    public string Expert { get; }

    public string AntiExpert { get; }

    private bool TrainsExpert => string.Equals(Expert, Train, StringComparison.OrdinalIgnoreCase);

    public static ProxyMethod Create(PeftOptionReader options) => new(options);

    public override bool Trains => TrainsExpert && !Loaded;

    /// <summary>The expert model (after Prepare or Load).</summary>
    public Gpt2Model? ExpertModel => _expert;

    public override CausalLm? TrainedModel => Trains ? _expert : null;

    public override IReadOnlyList<WeightedModel>? LogitMixture => _mixture;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        if (RefusalFor(config) is { } refusal) throw new ArgumentException($"{MethodName} on a {config.FamilyName} base: {refusal}.");
        var gpt2 = new Gpt2Config(config.Layers, config.Heads, config.Width, config.VocabSize, config.Positions, config.Dropout, config.NormEps);
        Gpt2Config expert = TrainsExpert ? ConfigOf(AntiExpert, gpt2) : ConfigOf(Expert, gpt2);
        long n = expert.ParameterCount;
        return new ParameterCounts(TrainsExpert ? n : 0, n);
    }

    private static Gpt2Config ConfigOf(string source, Gpt2Config baseConfig)
    {
        if (string.Equals(source, Base, StringComparison.OrdinalIgnoreCase)) return baseConfig;
        string path = Path.Combine(source, ModelCheckpoint.ConfigFile);
        if (!File.Exists(path)) throw new ArgumentException($"{MethodName}: no model folder at '{source}' ({ModelCheckpoint.ConfigFile} missing).");
        return Gpt2Config.FromJson(File.ReadAllText(path, Encoding.UTF8));
    }

    /// <summary>Proxy-tuning's expert and anti-expert are GPT-2 checkpoints (model folders load as GPT-2 only).</summary>
    public override string? RefusalFor(ModelShape shape) => shape.IsLlama
        ? "its expert and anti-expert are GPT-2 models (a copy of the base or a GPT-2 model folder); Llama-family experts are not implemented"
        : null;

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        _anti = string.Equals(AntiExpert, Base, StringComparison.OrdinalIgnoreCase) ? (Gpt2Model)model : LoadModel(AntiExpert, model);
        if (TrainsExpert)
        {
            _expert = Own(Copy(_anti));
            foreach (var p in _expert.parameters()) p.requires_grad = true;
        }
        else
        {
            _expert = LoadModel(Expert, model);
            foreach (var p in _expert.parameters()) p.requires_grad = false;
        }

        Finish(model);
        return TrainsExpert ? _expert.parameters().ToList() : [];
    }

    protected override void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        _anti = string.Equals(AntiExpert, Base, StringComparison.OrdinalIgnoreCase) ? (Gpt2Model)model : LoadModel(AntiExpert, model);
        Gpt2Config expertConfig = TrainsExpert ? _anti.Config : ConfigOf(Expert, ((Gpt2Model)model).Config);
        _expert = Own(new Gpt2Model(expertConfig));
        _expert.to(model.Device);
        foreach (var p in _expert.parameters()) p.requires_grad = false;
        Finish(model);
        CopyStored(_stored, stored);
        _expert.eval();
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => _stored;

    private void Finish(CausalLm model)
    {
        _stored = _expert!.named_parameters().Select(p => new KeyValuePair<string, Tensor>(StoredPrefix + p.name, p.parameter)).ToList();
        var weights = new Dictionary<CausalLm, double>(ReferenceEqualityComparer.Instance);
        void Add(CausalLm m, double w) => weights[m] = weights.GetValueOrDefault(m) + w;
        Add(model, 1.0);
        Add(_expert!, Alpha);
        Add(_anti!, -Alpha);
        _mixture = weights.Where(kv => kv.Value != 0).Select(kv => new WeightedModel(kv.Key, kv.Value)).ToArray();
    }

    private Gpt2Model LoadModel(string folder, CausalLm model)
    {
        var checkpoint = Own(ModelCheckpoint.Load(folder));
        checkpoint.Model.to(model.Device);
        checkpoint.Model.eval();
        return checkpoint.Model;
    }

    private static Gpt2Model Copy(Gpt2Model source)
    {
        var copy = new Gpt2Model(source.Config);
        copy.to(source.Device);
        using var noGrad = no_grad();
        var targets = copy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in source.named_parameters())
        {
            targets[name].copy_(p);
        }

        return copy;
    }
}
