using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.IA3;

/// <summary>
/// IA3 (as in PEFT for GPT-2): learned vectors, initialised to ones (so the base output is unchanged), that rescale the
/// output of c_attn (l_attn, 3·d: q, k and v as PEFT does; <c>targets=k,v</c> rescales only k and v, as IA3 was designed)
/// and the input of mlp.c_proj (l_ff, 4·d). 7·d per layer = 172,032 on gpt2-medium (0.048%).
/// Stored names: <c>h.{i}.attn.c_attn.ia3_l</c> [3d or 2d], <c>h.{i}.mlp.c_proj.ia3_l</c> [4d].
/// <para>
/// <c>targets=auto</c> (default) is PEFT's default for the base's family: all of c_attn on GPT-2; on a Llama-family base
/// the outputs of <c>k_proj</c> and <c>v_proj</c> (KeyValueHeads·HeadDim each under grouped-query attention) and the input
/// of <c>down_proj</c> (InnerWidth), stored as <c>layers.{i}.self_attn.{k,v}_proj.ia3_l</c> and
/// <c>layers.{i}.mlp.down_proj.ia3_l</c>. On Llama <c>c_attn</c> means q_proj, k_proj and v_proj.
/// </para>
/// </summary>
public sealed class IA3Method : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    /// <summary>Eval: the base stays frozen and the method adds its own terms, so it trains as Li &amp; Liang trained their frozen-base method, prefix-tuning (and packs with other cells).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "ia3";
    public const string TargetsCAttn = "c_attn";
    public const string TargetsKv = "k,v";
    public const string TargetsAuto = "auto";

    private readonly IA3Hooks _hooks;
    private readonly List<KeyValuePair<string, Tensor>> _stored = [];
    private (Parameter Attention, Parameter Mlp)[] _layers = [];
    private (Dictionary<Gpt2Projection, Parameter> Outputs, Parameter Down)[] _llamaLayers = [];

    private IA3Method(PeftOptionReader options) : base(options)
    {
        Targets = options.Choice("targets", TargetsAuto, "which attention outputs are rescaled: auto (PEFT's default: all of c_attn on GPT-2, k_proj and v_proj on Llama), all of c_attn (q,k,v) or k,v (the IA3 paper)", TargetsAuto, TargetsCAttn, TargetsKv);
        _hooks = new IA3Hooks(this);
    }

    public string Targets { get; }

    /// <summary>True when only keys and values are rescaled on a base of <paramref name="shape"/>.</summary>
    private bool KeyValueOnly(ModelShape shape) => Targets == TargetsKv || (Targets == TargetsAuto && shape.IsLlama);

    private static IEnumerable<(Gpt2Projection Site, string Path, long Width)> LlamaOutputs(ModelShape shape, bool keyValueOnly)
    {
        if (!keyValueOnly) yield return (Gpt2Projection.Query, "self_attn.q_proj", shape.QueryWidth);
        yield return (Gpt2Projection.Key, "self_attn.k_proj", shape.KeyValueWidth);
        yield return (Gpt2Projection.Value, "self_attn.v_proj", shape.KeyValueWidth);
    }

    public static IA3Method Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        if (config.IsLlama)
        {
            long perLayer = LlamaOutputs(config, KeyValueOnly(config)).Sum(o => o.Width) + config.InnerWidth;
            return new ParameterCounts(config.Layers * perLayer, config.Layers * perLayer);
        }

        long d = config.Width;
        long n = config.Layers * ((Targets == TargetsKv ? 2 : 3) * d + 4 * d);
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var config = model.Shape;
        long d = config.Width;
        _layers = new (Parameter Attention, Parameter Mlp)[config.Layers];
        _stored.Clear();
        var trainable = new List<Parameter>();
        if (config.IsLlama)
        {
            _llamaLayers = new (Dictionary<Gpt2Projection, Parameter>, Parameter)[config.Layers];
            for (int i = 0; i < config.Layers; i++)
            {
                var outputs = new Dictionary<Gpt2Projection, Parameter>();
                foreach (var (site, path, width) in LlamaOutputs(config, KeyValueOnly(config)))
                {
                    var scale = Own(new Parameter(ones(width, device: model.Device)));
                    outputs[site] = scale;
                    trainable.Add(scale);
                    _stored.Add(new($"layers.{i}.{path}.ia3_l", scale));
                }

                var down = Own(new Parameter(ones(config.InnerWidth, device: model.Device)));
                trainable.Add(down);
                _stored.Add(new($"layers.{i}.mlp.down_proj.ia3_l", down));
                _llamaLayers[i] = (outputs, down);
            }

            return trainable;
        }

        for (int i = 0; i < config.Layers; i++)
        {
            var attention = Own(new Parameter(ones((Targets == TargetsKv ? 2 : 3) * d, device: model.Device)));
            var mlp = Own(new Parameter(ones(4 * d, device: model.Device)));
            _layers[i] = (attention, mlp);
            trainable.Add(attention);
            trainable.Add(mlp);
            _stored.Add(new($"h.{i}.attn.c_attn.ia3_l", attention));
            _stored.Add(new($"h.{i}.mlp.c_proj.ia3_l", mlp));
        }

        return trainable;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => _stored;

    private sealed class IA3Hooks(IA3Method method) : Gpt2RowwiseHooks
    {
        private bool Llama => method._llamaLayers.Length > 0;

        public override bool AdjustsOutput(int layer, Gpt2Projection site) =>
            Llama ? method._llamaLayers[layer].Outputs.ContainsKey(site) : site == Gpt2Projection.AttentionQkv;

        public override bool AdjustsInput(int layer, Gpt2Projection site) => site == Gpt2Projection.MlpOut;

        public override Tensor AdjustInput(int layer, Gpt2Projection site, Tensor input, bool training) =>
            input * (Llama ? method._llamaLayers[layer].Down : method._layers[layer].Mlp);

        public override Tensor AdjustOutput(int layer, Gpt2Projection site, Tensor input, Tensor output, bool training)
        {
            if (Llama) return output * method._llamaLayers[layer].Outputs[site];
            var attention = method._layers[layer].Attention;
            if (method.Targets == TargetsKv)
            {
                long d = output.shape[^1] / 3;
                using var query = output.narrow(-1, 0, d);
                using var keyValue = output.narrow(-1, d, 2 * d);
                using var scaled = keyValue * attention;
                return cat([query, scaled], -1);
            }

            return output * attention;
        }
    }
}
