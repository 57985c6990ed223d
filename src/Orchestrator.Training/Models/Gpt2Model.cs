using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>
/// GPT-2 language model (pre-LayerNorm transformer, learned positions, GELU "gelu_new", LM head tied to <c>wte</c>) with
/// Hugging Face parameter names: <c>wte.weight</c>, <c>wpe.weight</c>, <c>h.{i}.ln_1.*</c>, <c>h.{i}.attn.c_attn.*</c>,
/// <c>h.{i}.attn.c_proj.*</c>, <c>h.{i}.ln_2.*</c>, <c>h.{i}.mlp.c_fc.*</c>, <c>h.{i}.mlp.c_proj.*</c>, <c>ln_f.*</c>.
/// Projection weights are <see cref="Linear"/> weights, [out, in]; Hugging Face's Conv1D stores them [in, out].
/// <para>
/// <see cref="forward"/> maps token ids [B,T] to logits [B,T,V]. <see cref="Forward"/> also takes position ids, a key padding
/// mask and per-layer past keys/values (prefix-tuning, KV cache); <see cref="Hidden"/> and <see cref="Logits"/> split the
/// two halves so that a decoder can project only the last position.
/// </para>
/// </summary>
public sealed class Gpt2Model : CausalLm
{
    /// <summary>Standard deviation of GPT-2's normal initialisation (initializer_range).</summary>
    public const double InitStd = 0.02;

    private readonly Gpt2Embedding wte;
    private readonly Gpt2Embedding wpe;
    private readonly ModuleList<Gpt2Block> h;
    private readonly LayerNorm ln_f;

    /// <summary>
    /// Builds the model and initialises it deterministically from <paramref name="seed"/> (a private generator supplies every
    /// value; constructing TorchSharp's Linear layers still advances the global generator for their default init, which is
    /// then overwritten): weights normal(0, 0.02), both <c>c_proj</c> weights normal(0, 0.02/√(2·Layers)), biases 0,
    /// LayerNorm weights 1.
    /// </summary>
    public Gpt2Model(Gpt2Config config, long seed = 0) : base(Prepare(config))
    {
        Config = config;
        wte = new Gpt2Embedding(config.VocabSize, config.Width);
        wpe = new Gpt2Embedding(config.Positions, config.Width);
        _dropout = new Gpt2Dropout(config.Dropout);
        h = new ModuleList<Gpt2Block>(Enumerable.Range(0, config.Layers).Select(i => new Gpt2Block(config, i, _dropout)).ToArray());
        ln_f = LayerNorm(config.Width, config.LayerNormEps);
        RegisterComponents();
        ResetParameters(seed);
    }

    public Gpt2Config Config { get; }

    private readonly Gpt2Dropout _dropout;

    /// <summary>
    /// The dropout rate of the embedding, attention and residual dropout in training mode: the checkpoint's
    /// (<see cref="Gpt2Config.Dropout"/>) until a trainer sets a cell's <c>training.base_dropout</c>.
    /// </summary>
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

    public override ModelShape Shape => Config;

    public override object Description => Config;

    /// <summary>Validates the config and loads the native backend before the base constructor touches torch.</summary>
    private static string Prepare(Gpt2Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        TorchRuntime.EnsureAvailable();
        return nameof(Gpt2Model);
    }

    /// <summary>The token embedding matrix [V, C], also the (tied) output projection.</summary>
    public override Parameter TokenEmbeddings => wte.Weight;

    /// <summary>The output projection: the tied token embeddings.</summary>
    public override Parameter OutputWeight => wte.Weight;

    /// <summary>The transformer blocks, h.0 … h.{L-1}.</summary>
    public IReadOnlyList<Gpt2Block> Blocks => h.ToList();

    /// <summary>
    /// Re-initialises all parameters as GPT-2 does, deterministically from <paramref name="seed"/> (a private generator; the
    /// global torch RNG is neither used nor advanced). Note: TorchSharp 0.107's <c>nn.init.normal_</c> ignores its
    /// generator argument; <c>Tensor.normal_(mean, std, generator)</c> honours it (and matches PyTorch's stream).
    /// </summary>
    public void ResetParameters(long seed)
    {
        using var generator = new Generator(unchecked((ulong)seed), Device);
        using var noGrad = no_grad();
        double projectionStd = InitStd / Math.Sqrt(2.0 * Config.Layers);
        foreach (var (name, parameter) in named_parameters())
        {
            bool isLayerNorm = name.StartsWith("ln_f.", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal);
            if (isLayerNorm)
            {
                if (name.EndsWith(".weight", StringComparison.Ordinal)) init.ones_(parameter);
                else init.zeros_(parameter);
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                init.zeros_(parameter);
            }
            else if (name.EndsWith("c_proj.weight", StringComparison.Ordinal))
            {
                parameter.normal_(0, projectionStd, generator);
            }
            else
            {
                parameter.normal_(0, InitStd, generator);
            }
        }
    }

    /// <inheritdoc/>
    protected override Tensor Body(Tensor inputIds, Tensor? prompt, Tensor positions, bool explicitPositions, Tensor? mask,
        IReadOnlyList<LayerKeyValue>? past, Gpt2Hooks? hooks, List<LayerKeyValue>? presents)
    {
        if (explicitPositions && positions.numel() > 0 && positions.max().item<long>() >= Config.Positions)
        {
            throw new ArgumentException($"Position id {positions.max().item<long>()} is beyond the model's {Config.Positions} positions.", "positionIds");
        }

        Tensor x = WithPrompt(prompt, wte.forward(inputIds)) + wpe.forward(positions);
        x = _dropout.Apply(x, training);
        for (int i = 0; i < Config.Layers; i++)
        {
            x = h[i].Forward(x, mask, past?[i], hooks, i, presents);
        }

        return ln_f.forward(x);
    }
}
