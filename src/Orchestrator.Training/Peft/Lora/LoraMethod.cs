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
/// <para>
/// On a Llama-family base the targets are Hugging Face PEFT's module names: <c>q,v</c> (PEFT's Llama default) is
/// <c>q_proj,v_proj</c>; any comma list of <c>q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj</c>, or
/// <c>all-linear</c> for the seven. Each target gets A [r, in] and B [out, r] (k_proj and v_proj are KeyValueHeads·HeadDim
/// wide under grouped-query attention), stored as <c>layers.{i}.{self_attn|mlp}.{module}.lora_{A,B}.weight</c>.
/// </para>
/// </summary>
public sealed class LoraMethod : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    /// <summary>Eval: the base stays frozen and the method adds its own terms, so it trains as Li &amp; Liang trained their frozen-base method, prefix-tuning (and packs with other cells).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "lora";
    public const string TargetsQv = "q,v";
    public const string TargetsCAttn = "c_attn";
    public const string TargetsAllLinear = "all-linear";

    /// <summary>Llama-family modules LoRA can target, in the order of a block.</summary>
    public static readonly IReadOnlyList<string> LlamaModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    private readonly LoraHooks _hooks;
    private readonly List<KeyValuePair<string, Tensor>> _stored = [];
    private LayerLora[] _layers = [];
    private Dictionary<Gpt2Projection, (Parameter A, Parameter B)>[] _llamaLayers = [];
    private PeftDropout? _dropout;

    private LoraMethod(PeftOptionReader options) : base(options)
    {
        Rank = options.Int("r", 4, "rank r of the update");
        Alpha = options.Double("alpha", 32, "scaling numerator α (the update is scaled by α/r)", 0, minExclusive: true);
        Dropout = options.Rate("dropout", 0.1, "dropout on the input of the low-rank branch (training only)");
        Targets = ReadTargets(options);
        _hooks = new LoraHooks(this);
    }

    public int Rank { get; }

    public double Alpha { get; }

    public double Dropout { get; }

    /// <summary><see cref="TargetsQv"/>, <see cref="TargetsCAttn"/> (GPT-2), <see cref="TargetsAllLinear"/> or a list of <see cref="LlamaModules"/> (Llama).</summary>
    public string Targets { get; }

    /// <summary>The Llama modules the targets name (q,v → q_proj, v_proj); empty for <c>c_attn</c>.</summary>
    public IReadOnlyList<string> LlamaTargets => Targets switch
    {
        TargetsQv => ["q_proj", "v_proj"],
        TargetsCAttn => [],
        TargetsAllLinear => LlamaModules,
        _ => Targets.Split(','),
    };

    private static string ReadTargets(PeftOptionReader options)
    {
        string raw = options.Text("targets", TargetsQv,
            "which projections get an update: q,v (microsoft/LoRA; PEFT's Llama default q_proj,v_proj), c_attn (all of GPT-2's c_attn, PEFT's GPT-2 default), or on Llama a comma list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear")
            ?? TargetsQv;
        string normalized = string.Concat(raw.Where(c => !char.IsWhiteSpace(c))).ToLowerInvariant();
        if (normalized is TargetsQv or TargetsCAttn or TargetsAllLinear)
        {
            options.SetCanonical("targets", normalized);
            return normalized;
        }

        string[] names = normalized.Split(',', StringSplitOptions.RemoveEmptyEntries);
        string[] unknown = names.Where(n => !LlamaModules.Contains(n)).ToArray();
        if (names.Length == 0 || unknown.Length > 0)
        {
            options.Problem("targets", $"expected q,v, c_attn, all-linear or a comma list of {string.Join(", ", LlamaModules)}, got '{raw}'");
            return TargetsQv;
        }

        string canonical = string.Join(",", LlamaModules.Where(names.Contains)); // block order, no repeats
        options.SetCanonical("targets", canonical);
        return canonical;
    }

    /// <summary>GPT-2 has only c_attn targets; Llama has no fused c_attn.</summary>
    public override string? RefusalFor(ModelShape shape) => (shape.IsLlama, Targets) switch
    {
        (true, TargetsCAttn) => "targets=c_attn is GPT-2's fused projection; on Llama name PEFT's modules (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj) or all-linear",
        (false, not (TargetsQv or TargetsCAttn)) => $"targets={Targets} names Llama modules; GPT-2 takes q,v or c_attn",
        _ => null,
    };

    /// <summary>(site, input width, output width) of a Llama module.</summary>
    private static (Gpt2Projection Site, long In, long Out, string Path) LlamaSite(string module, ModelShape shape) => module switch
    {
        "q_proj" => (Gpt2Projection.Query, shape.Width, shape.QueryWidth, "self_attn.q_proj"),
        "k_proj" => (Gpt2Projection.Key, shape.Width, shape.KeyValueWidth, "self_attn.k_proj"),
        "v_proj" => (Gpt2Projection.Value, shape.Width, shape.KeyValueWidth, "self_attn.v_proj"),
        "o_proj" => (Gpt2Projection.AttentionOutput, shape.QueryWidth, shape.Width, "self_attn.o_proj"),
        "gate_proj" => (Gpt2Projection.MlpGate, shape.Width, shape.InnerWidth, "mlp.gate_proj"),
        "up_proj" => (Gpt2Projection.MlpUp, shape.Width, shape.InnerWidth, "mlp.up_proj"),
        "down_proj" => (Gpt2Projection.MlpOut, shape.InnerWidth, shape.Width, "mlp.down_proj"),
        _ => throw new ArgumentException($"unknown Llama module '{module}'"),
    };

    public double Scaling => Alpha / Rank;

    public static LoraMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    /// <inheritdoc/>
    public void PinDropoutLength(int length)
    {
        if (_dropout is not null) _dropout.PinnedLength = length;
    }

    public override ParameterCounts CountParameters(ModelShape config)
    {
        ThrowIfRefused(config);
        if (config.IsLlama)
        {
            long perLlamaLayer = LlamaTargets.Select(m => LlamaSite(m, config)).Sum(s => Rank * (s.In + s.Out));
            return new ParameterCounts(config.Layers * perLlamaLayer, config.Layers * perLlamaLayer);
        }

        long d = config.Width;
        long perLayer = Targets == TargetsQv ? 2 * (Rank * d + d * Rank) : Rank * d + 3 * d * Rank;
        long n = config.Layers * perLayer;
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        using var generator = NewGenerator(context, model);
        _dropout = Own(new PeftDropout(Dropout, NewGenerator(context, model, stream: 1)));
        var config = model.Shape;
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

        if (config.IsLlama)
        {
            _llamaLayers = new Dictionary<Gpt2Projection, (Parameter A, Parameter B)>[config.Layers];
            for (int i = 0; i < config.Layers; i++)
            {
                _llamaLayers[i] = [];
                foreach (string module in LlamaTargets)
                {
                    var (site, inWidth, outWidth, path) = LlamaSite(module, config);
                    var a = NewParameter($"layers.{i}.{path}.lora_A.weight", Rank, inWidth, kaiming: true);
                    var b = NewParameter($"layers.{i}.{path}.lora_B.weight", outWidth, Rank, kaiming: false);
                    _llamaLayers[i][site] = (a, b);
                }
            }

            return trainable;
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
        public override bool AdjustsOutput(int layer, Gpt2Projection site) => method._llamaLayers.Length > 0
            ? method._llamaLayers[layer].ContainsKey(site)
            : site == Gpt2Projection.AttentionQkv;

        public override Tensor AdjustOutput(int layer, Gpt2Projection site, Tensor input, Tensor output, bool training)
        {
            if (method._llamaLayers.Length > 0)
            {
                var (a, b) = method._llamaLayers[layer][site];
                using var dropped = method._dropout!.Apply(input, training);
                using var low = functional.linear(dropped, a);
                using var update = functional.linear(low, b);
                return output.add(update, method.Scaling);
            }

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
