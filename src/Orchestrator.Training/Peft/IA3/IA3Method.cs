using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.IA3;

/// <summary>
/// IA3 (as in PEFT for GPT-2): learned vectors, initialised to ones (so the base output is unchanged), that rescale the
/// output of c_attn (l_attn, 3·d: q, k and v as PEFT does; <c>targets=k,v</c> rescales only k and v, as IA3 was designed)
/// and the input of mlp.c_proj (l_ff, 4·d). 7·d per layer = 172,032 on gpt2-medium (0.048%).
/// Stored names: <c>h.{i}.attn.c_attn.ia3_l</c> [3d or 2d], <c>h.{i}.mlp.c_proj.ia3_l</c> [4d].
/// </summary>
public sealed class IA3Method : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    /// <summary>Eval: the base stays frozen and the method adds its own terms, so it trains as Li &amp; Liang trained their frozen-base method, prefix-tuning (and packs with other cells).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "ia3";
    public const string TargetsCAttn = "c_attn";
    public const string TargetsKv = "k,v";

    private readonly IA3Hooks _hooks;
    private readonly List<KeyValuePair<string, Tensor>> _stored = [];
    private (Parameter Attention, Parameter Mlp)[] _layers = [];

    private IA3Method(PeftOptionReader options) : base(options)
    {
        Targets = options.Choice("targets", TargetsCAttn, "which c_attn outputs are rescaled: all of c_attn (q,k,v; PEFT) or k,v (the IA3 paper)", TargetsCAttn, TargetsKv);
        _hooks = new IA3Hooks(this);
    }

    public string Targets { get; }

    public static IA3Method Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(Gpt2Config config)
    {
        long d = config.Width;
        long n = config.Layers * ((Targets == TargetsKv ? 2 : 3) * d + 4 * d);
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(Gpt2Model model, PeftContext context)
    {
        var config = model.Config;
        long d = config.Width;
        _layers = new (Parameter Attention, Parameter Mlp)[config.Layers];
        _stored.Clear();
        var trainable = new List<Parameter>();
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
        public override bool AdjustsOutput(int layer, Gpt2Projection site) => site == Gpt2Projection.AttentionQkv;

        public override bool AdjustsInput(int layer, Gpt2Projection site) => site == Gpt2Projection.MlpOut;

        public override Tensor AdjustInput(int layer, Gpt2Projection site, Tensor input, bool training) =>
            input * method._layers[layer].Mlp;

        public override Tensor AdjustOutput(int layer, Gpt2Projection site, Tensor input, Tensor output, bool training)
        {
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
