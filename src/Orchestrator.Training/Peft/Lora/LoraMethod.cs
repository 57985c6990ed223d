using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Peft.Lora;

/// <summary>
/// LoRA on the attention's c_attn: h = x·W0 + b + (α/r)·dropout(x)·Aᵀ·Bᵀ with A kaiming-uniform (a=√5) and B = 0, so the
/// base output is unchanged at initialisation. <c>targets=q,v</c> (microsoft/LoRA's GPT-2 setup, default) adds separate
/// (A_q, B_q) and (A_v, B_v) to the query and value columns; <c>targets=c_attn</c> (PEFT's GPT-2 default) one (A, B) over all
/// of q, k, v. Both have 4·r·d parameters per layer (r=4: 393,216 on gpt2-medium, 0.11%).
/// Stored names: <c>h.{i}.attn.c_attn.{q,v}.lora_{A,B}.weight</c> or <c>h.{i}.attn.c_attn.lora_{A,B}.weight</c>
/// (A [r, d], B [out, r]).
/// </summary>
public sealed class LoraMethod : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    /// <summary>Eval: the base stays frozen and the method adds its own terms, so it trains as Li &amp; Liang trained their frozen-base method, prefix-tuning (and packs with other cells).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "lora";
    public const string TargetsQv = "q,v";
    public const string TargetsCAttn = "c_attn";

    private readonly LoraHooks _hooks;
    private readonly List<KeyValuePair<string, Tensor>> _stored = [];
    private LayerLora[] _layers = [];
    private PeftDropout? _dropout;

    private LoraMethod(PeftOptionReader options) : base(options)
    {
        Rank = options.Int("r", 4, "rank r of the update");
        Alpha = options.Double("alpha", 32, "scaling numerator α (the update is scaled by α/r)", 0, minExclusive: true);
        Dropout = options.Rate("dropout", 0.1, "dropout on the input of the low-rank branch (training only)");
        Targets = options.Choice("targets", TargetsQv, "which c_attn columns get an update: q,v (microsoft/LoRA) or all of c_attn (PEFT's default)", TargetsQv, TargetsCAttn);
        _hooks = new LoraHooks(this);
    }

    public int Rank { get; }

    public double Alpha { get; }

    public double Dropout { get; }

    /// <summary><see cref="TargetsQv"/> or <see cref="TargetsCAttn"/>.</summary>
    public string Targets { get; }

    public double Scaling => Alpha / Rank;

    public static LoraMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    /// <inheritdoc/>
    public void PinDropoutLength(int length)
    {
        if (_dropout is not null) _dropout.PinnedLength = length;
    }

    public override ParameterCounts CountParameters(Gpt2Config config)
    {
        long d = config.Width;
        long perLayer = Targets == TargetsQv ? 2 * (Rank * d + d * Rank) : Rank * d + 3 * d * Rank;
        long n = config.Layers * perLayer;
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(Gpt2Model model, PeftContext context)
    {
        using var generator = NewGenerator(context, model);
        _dropout = Own(new PeftDropout(Dropout, NewGenerator(context, model, stream: 1)));
        var config = model.Config;
        long d = config.Width;
        var trainable = new List<Parameter>();
        _layers = new LayerLora[config.Layers];
        _stored.Clear();
        Parameter NewParameter(string name, long rows, long columns, bool kaiming)
        {
            var p = new Parameter(empty(rows, columns, device: model.Device));
            if (kaiming) PeftInit.KaimingUniformA5(p, generator);
            else p.zero_();
            Own(p);
            trainable.Add(p);
            _stored.Add(new(name, p));
            return p;
        }

        for (int i = 0; i < config.Layers; i++)
        {
            string prefix = $"h.{i}.attn.c_attn.";
            if (Targets == TargetsQv)
            {
                var aq = NewParameter(prefix + "q.lora_A.weight", Rank, d, kaiming: true);
                var bq = NewParameter(prefix + "q.lora_B.weight", d, Rank, kaiming: false);
                var av = NewParameter(prefix + "v.lora_A.weight", Rank, d, kaiming: true);
                var bv = NewParameter(prefix + "v.lora_B.weight", d, Rank, kaiming: false);
                _layers[i] = new LayerLora(aq, bq, av, bv);
            }
            else
            {
                var a = NewParameter(prefix + "lora_A.weight", Rank, d, kaiming: true);
                var b = NewParameter(prefix + "lora_B.weight", 3 * d, Rank, kaiming: false);
                _layers[i] = new LayerLora(a, b, null, null);
            }
        }

        return trainable;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => _stored;

    /// <summary>(A, B) of one layer; for q,v the second pair is the value's.</summary>
    private sealed record LayerLora(Parameter A, Parameter B, Parameter? ValueA, Parameter? ValueB);

    private sealed class LoraHooks(LoraMethod method) : Gpt2RowwiseHooks
    {
        public override bool AdjustsOutput(int layer, Gpt2Projection site) => site == Gpt2Projection.AttentionQkv;

        public override Tensor AdjustOutput(int layer, Gpt2Projection site, Tensor input, Tensor output, bool training)
        {
            var lora = method._layers[layer];
            using var x = method._dropout!.Apply(input, training);
            if (lora.ValueA is null)
            {
                using var down = functional.linear(x, lora.A);
                using var up = functional.linear(down, lora.B);
                return output.add(up, method.Scaling);
            }

            using var downQ = functional.linear(x, lora.A);
            using var upQ = functional.linear(downQ, lora.B);
            using var downV = functional.linear(x, lora.ValueA);
            using var upV = functional.linear(downV, lora.ValueB!);
            using var zeros = zeros_like(upQ);
            using var delta = cat([upQ, zeros, upV], -1);
            return output.add(delta, method.Scaling);
        }
    }
}
