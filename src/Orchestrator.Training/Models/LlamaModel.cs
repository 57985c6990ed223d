using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>
/// A Llama-family decoder (Llama, Mistral without sliding window, Qwen2) with transformers' parameter names less the
/// <c>model.</c> prefix of the checkpoint: <c>embed_tokens.weight</c>, <c>layers.{i}.input_layernorm.weight</c>,
/// <c>layers.{i}.self_attn.{q,k,v,o}_proj.*</c>, <c>layers.{i}.post_attention_layernorm.weight</c>,
/// <c>layers.{i}.mlp.{gate,up,down}_proj.weight</c>, <c>norm.weight</c> and, when untied, <c>lm_head.weight</c>.
/// <para>
/// Each block is x + o_proj(attn(rope(q), rope(k), v)) over input_layernorm(x), then + down_proj(silu(gate_proj(h)) ·
/// up_proj(h)) over post_attention_layernorm. RMSNorm runs in float32; rotary embeddings use the rotate_half convention
/// (the first half of each head against the second), cos/sin computed in float32 from the position ids as transformers
/// does. Keys and values have <see cref="LlamaConfig.KeyValueHeads"/> heads; each serves
/// <see cref="LlamaConfig.QueriesPerKeyValue"/> consecutive query heads. A KV cache (<see cref="LayerKeyValue"/>, [B,
/// KeyValueHeads, P, HeadDim], keys after rotation) is passed as <c>past</c> and returned through <c>presents</c>.
/// </para>
/// </summary>
public sealed class LlamaModel : CausalLm
{
    /// <summary>Standard deviation of the random initialisation (initializer_range).</summary>
    public const double InitStd = 0.02;

    private readonly Gpt2Embedding embed_tokens;
    private readonly ModuleList<LlamaBlock> layers;
    private readonly RmsNorm norm;
    private readonly Gpt2Embedding? lm_head;
    private readonly float[] _inverseFrequencies;
    private readonly Gpt2Dropout _dropout;

    /// <summary>Builds the model and initialises it from <paramref name="seed"/>: weights normal(0, 0.02), biases 0, norms 1.</summary>
    public LlamaModel(LlamaConfig config, long seed = 0) : base(Prepare(config))
    {
        Config = config;
        embed_tokens = new Gpt2Embedding(config.VocabSize, config.Width);
        _dropout = new Gpt2Dropout(config.AttentionDropout);
        layers = new ModuleList<LlamaBlock>(Enumerable.Range(0, config.Layers).Select(_ => new LlamaBlock(config, _dropout)).ToArray());
        norm = new RmsNorm(config.Width, config.RmsNormEps);
        if (!config.TieWordEmbeddings)
        {
            lm_head = new Gpt2Embedding(config.VocabSize, config.Width);
        }

        _inverseFrequencies = config.InverseFrequencies().Select(f => (float)f).ToArray();
        RegisterComponents();
        ResetParameters(seed);
    }

    public LlamaConfig Config { get; }

    public override ModelShape Shape => Config;

    public override object Description => Config;

    /// <summary>The attention dropout rate in training mode (attention_dropout until a cell's base_dropout sets it).</summary>
    public override double Dropout
    {
        get => _dropout.Rate;
        set => _dropout.Rate = value;
    }

    /// <inheritdoc/>
    public override Generator? DropoutGenerator
    {
        get => _dropout.Generator;
        set => _dropout.Generator = value;
    }

    /// <summary>The token embedding matrix [V, C].</summary>
    public override Parameter TokenEmbeddings => embed_tokens.Weight;

    /// <summary>The output projection [V, C] (the token embeddings when tied).</summary>
    public override Parameter OutputWeight => lm_head?.Weight ?? embed_tokens.Weight;

    /// <summary>The blocks, layers.0 … layers.{L-1}.</summary>
    public IReadOnlyList<LlamaBlock> Blocks => layers.ToList();

    private static string Prepare(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        TorchRuntime.EnsureAvailable();
        return nameof(LlamaModel);
    }

    /// <summary>Re-initialises all parameters from <paramref name="seed"/> with a private generator.</summary>
    public void ResetParameters(long seed)
    {
        using var generator = new Generator(unchecked((ulong)seed), Device);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) init.ones_(parameter);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) init.zeros_(parameter);
            else parameter.normal_(0, InitStd, generator);
        }
    }

    /// <inheritdoc/>
    /// <remarks>A prompt gets rotary positions 0 … P−1 and the real tokens P …; a prefix is the keys/values of P cached
    /// positions, used as given (not rotated again).</remarks>
    protected override Tensor Body(Tensor inputIds, Tensor? prompt, Tensor positions, bool explicitPositions, Tensor? mask,
        IReadOnlyList<LayerKeyValue>? past, Gpt2Hooks? hooks, List<LayerKeyValue>? presents)
    {
        var (cos, sin) = Rotary(positions);
        Tensor x = WithPrompt(prompt, embed_tokens.forward(inputIds));
        for (int i = 0; i < Config.Layers; i++)
        {
            x = layers[i].Forward(x, cos, sin, mask, past?[i], presents, hooks, i);
        }

        return norm.forward(x);
    }

    /// <summary>cos and sin [B or 1, 1, T, HeadDim] for position ids [B or 1, T], in float32 as transformers computes them.</summary>
    private (Tensor Cos, Tensor Sin) Rotary(Tensor positions)
    {
        Tensor inv = tensor(_inverseFrequencies, ScalarType.Float32, positions.device);
        Tensor freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv;
        Tensor emb = cat([freqs, freqs], -1).unsqueeze(1);
        return (emb.cos(), emb.sin());
    }
}

/// <summary>Root-mean-square LayerNorm with a weight and no bias, computed in float32.</summary>
public sealed class RmsNorm : Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public RmsNorm(long width, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(width));
        _eps = eps;
        RegisterComponents();
    }

    /// <summary>The scale, [width].</summary>
    public Parameter Weight => weight;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h = x.dtype == ScalarType.Float32 ? x : x.to_type(ScalarType.Float32);
        Tensor variance = h.pow(2).mean([-1], keepdim: true);
        Tensor normed = h * (variance + _eps).rsqrt();
        return (weight * normed.to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>Grouped-query self-attention with rotary positions: q_proj, k_proj, v_proj (optional biases), o_proj.</summary>
public sealed class LlamaAttention : Module
{
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear o_proj;
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly Gpt2Dropout _dropout;

    public LlamaAttention(LlamaConfig config, Gpt2Dropout? dropout = null) : base(nameof(LlamaAttention))
    {
        _heads = config.Heads;
        _kvHeads = config.KeyValueHeads;
        _headDim = config.HeadDim;
        _dropout = dropout ?? new Gpt2Dropout(config.AttentionDropout);
        q_proj = Linear(config.Width, (long)_heads * _headDim, hasBias: config.QkvBias);
        k_proj = Linear(config.Width, (long)_kvHeads * _headDim, hasBias: config.QkvBias);
        v_proj = Linear(config.Width, (long)_kvHeads * _headDim, hasBias: config.QkvBias);
        o_proj = Linear((long)_heads * _headDim, config.Width, hasBias: config.OutputBias);
        RegisterComponents();
    }

    public Linear Query => q_proj;

    public Linear Key => k_proj;

    public Linear Value => v_proj;

    public Linear Output => o_proj;

    /// <summary>x [B,T,C] → [B,T,C]; call inside a DisposeScope. Cache entries hold the rotated keys of the KV heads.</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, LayerKeyValue? past, List<LayerKeyValue>? presents,
        Gpt2Hooks? hooks = null, int layer = 0)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor Project(Gpt2Projection site, Linear linear, Tensor input) =>
            hooks is null ? linear.forward(input) : hooks.Project(layer, site, linear, input, training);
        Tensor q = Project(Gpt2Projection.Query, q_proj, x).view(b, t, _heads, _headDim).transpose(1, 2);
        Tensor k = Project(Gpt2Projection.Key, k_proj, x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        Tensor v = Project(Gpt2Projection.Value, v_proj, x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = q * cos + RotateHalf(q) * sin;
        k = k * cos + RotateHalf(k) * sin;
        if (past is not null)
        {
            k = cat([past.Key, k], 2);
            v = cat([past.Value, v], 2);
        }

        presents?.Add(new LayerKeyValue(k, v));
        Tensor keys = RepeatKeyValue(k), values = RepeatKeyValue(v);
        Tensor y = _dropout.Attention(q, keys, values, mask, training);
        if (hooks is not null) y = hooks.AttentionHeads(layer, this, q, y, training);
        return Project(Gpt2Projection.AttentionOutput, o_proj, y.transpose(1, 2).reshape(b, t, (long)_heads * _headDim));
    }

    /// <summary>Query heads per key/value head.</summary>
    public int QueriesPerKeyValue => _heads / _kvHeads;

    /// <summary>Width of one head.</summary>
    public int HeadDim => _headDim;

    /// <summary>Number of query heads.</summary>
    public int Heads => _heads;

    /// <summary>Number of key/value heads.</summary>
    public int KeyValueHeads => _kvHeads;

    /// <summary>[x1, x2] → [−x2, x1] over the last dimension (transformers' rotate_half).</summary>
    private static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        return cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
    }

    /// <summary>[B, KV, L, D] → [B, Heads, L, D]: key/value head j serves query heads j·g … j·g+g−1 (repeat_kv).</summary>
    public Tensor RepeatKeyValue(Tensor x)
    {
        int groups = _heads / _kvHeads;
        if (groups == 1) return x;
        long b = x.shape[0], l = x.shape[2];
        return x.unsqueeze(2).expand(b, _kvHeads, groups, l, _headDim).reshape(b, _heads, l, _headDim);
    }
}

/// <summary>The SwiGLU feed-forward part: down_proj(silu(gate_proj(x)) · up_proj(x)), no biases.</summary>
public sealed class LlamaMlp : Module
{
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;

    public LlamaMlp(LlamaConfig config) : base(nameof(LlamaMlp))
    {
        gate_proj = Linear(config.Width, config.InnerWidth, hasBias: false);
        up_proj = Linear(config.Width, config.InnerWidth, hasBias: false);
        down_proj = Linear(config.InnerWidth, config.Width, hasBias: false);
        RegisterComponents();
    }

    public Linear Gate => gate_proj;

    public Linear Up => up_proj;

    public Linear Down => down_proj;

    /// <summary>x [B,T,C] → [B,T,C]; <paramref name="hooks"/> may replace the three projections. Call inside a DisposeScope.</summary>
    public Tensor Forward(Tensor x, Gpt2Hooks? hooks = null, int layer = 0)
    {
        if (hooks is null) return down_proj.forward(functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
        Tensor gate = hooks.Project(layer, Gpt2Projection.MlpGate, gate_proj, x, training);
        Tensor up = hooks.Project(layer, Gpt2Projection.MlpUp, up_proj, x, training);
        return hooks.Project(layer, Gpt2Projection.MlpOut, down_proj, functional.silu(gate) * up, training);
    }
}

/// <summary>One pre-norm block: x + self_attn(input_layernorm(x)), then + mlp(post_attention_layernorm(·)).</summary>
public sealed class LlamaBlock : Module
{
    private readonly RmsNorm input_layernorm;
    private readonly LlamaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly LlamaMlp mlp;

    public LlamaBlock(LlamaConfig config, Gpt2Dropout? dropout = null) : base(nameof(LlamaBlock))
    {
        input_layernorm = new RmsNorm(config.Width, config.RmsNormEps);
        self_attn = new LlamaAttention(config, dropout);
        post_attention_layernorm = new RmsNorm(config.Width, config.RmsNormEps);
        mlp = new LlamaMlp(config);
        RegisterComponents();
    }

    public LlamaAttention Attention => self_attn;

    public LlamaMlp Mlp => mlp;

    public RmsNorm AttentionNorm => input_layernorm;

    public RmsNorm MlpNorm => post_attention_layernorm;

    /// <summary>One block; call inside a DisposeScope.</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, LayerKeyValue? past, List<LayerKeyValue>? presents,
        Gpt2Hooks? hooks = null, int layer = 0)
    {
        Tensor normed1 = input_layernorm.forward(x);
        Tensor attention = self_attn.Forward(normed1, cos, sin, mask, past, presents, hooks, layer);
        if (hooks is not null) attention = hooks.Sublayer(layer, Gpt2Sublayer.Attention, this, normed1, attention, training);
        Tensor h = x + attention;
        Tensor normed2 = post_attention_layernorm.forward(h);
        Tensor fed = mlp.Forward(normed2, hooks, layer);
        if (hooks is not null) fed = hooks.Sublayer(layer, Gpt2Sublayer.Mlp, this, normed2, fed, training);
        Tensor output = h + fed;
        return hooks is null ? output : hooks.Block(layer, output, training);
    }
}
