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

    /// <summary>
    /// Token ids [B,T] → final hidden states [B,T,C] (after ln_f).
    /// <paramref name="positionIds"/>: [B,T] or [1,T]; default P, P+1, …, P+T-1 where P is the past length.
    /// <paramref name="attentionMask"/>: [B, P+T], nonzero/true for real tokens and 0/false for padding; padded keys are
    /// never attended to (a padded query attends only to itself so that its row stays finite). Null means no padding.
    /// <paramref name="past"/>: one <see cref="LayerKeyValue"/> per layer, prepended to that layer's keys/values.
    /// <paramref name="hooks"/>: a PEFT method's extension points for this pass (see <see cref="Gpt2Hooks"/>). On a pass without
    /// <paramref name="past"/> they may add V virtual tokens in front: then <paramref name="positionIds"/> count from the first
    /// real token (the model adds V), <paramref name="attentionMask"/> may be [B, T] (extended with V ones) or [B, V+T], and
    /// the result still covers only the T real tokens.
    /// <paramref name="presents"/>: when given, receives one <see cref="LayerKeyValue"/> per layer with everything that layer
    /// attended to (past or virtual tokens + the T new ones, [B, Heads, P+T, HeadDim]): the KV cache to pass as
    /// <paramref name="past"/> next time. They are moved to the caller's DisposeScope (the caller disposes them).
    /// With explicit <paramref name="positionIds"/> (left-padded batches) the limit is on the largest position id, not on
    /// the cache length.
    /// </summary>
    public override Tensor Hidden(
        Tensor inputIds,
        Tensor? positionIds = null,
        Tensor? attentionMask = null,
        IReadOnlyList<LayerKeyValue>? past = null,
        Gpt2Hooks? hooks = null,
        List<LayerKeyValue>? presents = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2)
        {
            throw new ArgumentException($"inputIds must be [batch, time]; got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        }

        if (past is not null && past.Count != Config.Layers)
        {
            throw new ArgumentException($"past must have one entry per layer ({Config.Layers}); got {past.Count}.", nameof(past));
        }

        long b = inputIds.shape[0], t = inputIds.shape[1];
        using var scope = NewDisposeScope();
        long pastLength = past is { Count: > 0 } ? past[0].Length : 0;

        // Virtual tokens of a PEFT method (only on a pass without past: a cache already holds them).
        Tensor? prompt = null;
        long virtualTokens = 0;
        if (hooks is not null && pastLength == 0)
        {
            IReadOnlyList<LayerKeyValue>? prefix = hooks.Prefix(b, training);
            prompt = hooks.Prompt(b, training);
            if (prefix is not null && prompt is not null)
            {
                throw new InvalidOperationException("Hooks may supply a prefix or a prompt, not both.");
            }

            if (prefix is not null)
            {
                if (prefix.Count != Config.Layers)
                {
                    throw new InvalidOperationException($"The hooks' prefix has {prefix.Count} layers; the model has {Config.Layers}.");
                }

                past = prefix;
                pastLength = virtualTokens = prefix[0].Length;
            }
            else if (prompt is not null)
            {
                if (prompt.dim() != 3 || prompt.shape[2] != Config.Width || (prompt.shape[0] != 1 && prompt.shape[0] != b))
                {
                    throw new InvalidOperationException(
                        $"The hooks' prompt must be [1 or {b}, P, {Config.Width}]; got [{string.Join(", ", prompt.shape)}].");
                }

                virtualTokens = prompt.shape[1];
            }
        }

        long promptLength = prompt is null ? 0 : virtualTokens;
        long length = promptLength + t;
        if (positionIds is null && pastLength + length > Config.Positions)
        {
            throw new ArgumentException(
                $"Sequence of {t} tokens (+{pastLength + promptLength} past or virtual) exceeds the model's {Config.Positions} positions.",
                nameof(inputIds));
        }

        Tensor positions;
        if (positionIds is null)
        {
            positions = arange(pastLength, pastLength + length, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        }
        else if (virtualTokens == 0)
        {
            positions = positionIds;
        }
        else
        {
            positions = positionIds + virtualTokens;
            if (promptLength > 0)
            {
                Tensor promptPositions = arange(0, promptLength, dtype: ScalarType.Int64, device: inputIds.device)
                    .unsqueeze(0).expand(positions.shape[0], promptLength);
                positions = cat([promptPositions, positions], 1);
            }
        }

        if (positionIds is not null && positions.numel() > 0 && positions.max().item<long>() >= Config.Positions)
        {
            throw new ArgumentException(
                $"Position id {positions.max().item<long>()} is beyond the model's {Config.Positions} positions.", nameof(positionIds));
        }

        Tensor x = wte.forward(inputIds);
        if (prompt is not null)
        {
            x = cat([prompt.shape[0] == b ? prompt : prompt.expand(b, promptLength, Config.Width), x], 1);
        }

        x = x + wpe.forward(positions);
        x = functional.dropout(x, training ? _dropout.Rate : 0.0, training);

        if (attentionMask is not null && virtualTokens > 0 && attentionMask.dim() == 2 && attentionMask.shape[1] == t)
        {
            Tensor real = attentionMask.dtype == ScalarType.Bool ? attentionMask : attentionMask.ne(0);
            attentionMask = cat([ones(b, virtualTokens, dtype: ScalarType.Bool, device: inputIds.device), real], 1);
        }

        Tensor? mask = BuildMask(b, length, pastLength, attentionMask, inputIds.device);
        int firstPresent = presents?.Count ?? 0;
        for (int i = 0; i < Config.Layers; i++)
        {
            x = h[i].Forward(x, mask, past?[i], hooks, i, presents);
        }

        if (presents is not null)
        {
            for (int i = firstPresent; i < presents.Count; i++)
            {
                presents[i].Key.MoveToOuterDisposeScope();
                presents[i].Value.MoveToOuterDisposeScope();
            }
        }

        Tensor output = ln_f.forward(x);
        if (promptLength > 0)
        {
            output = output.narrow(1, promptLength, t);
        }

        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Null when plain causal attention suffices (no past, no padding); otherwise a boolean mask [T, P+T] or [B,1,T,P+T].
    /// The causal part is tril(P): query i sees all P past entries and current positions ≤ i (the built-in causal flag
    /// would align the triangle wrongly when P > 0).
    /// </summary>
    internal static Tensor? BuildMask(long b, long t, long pastLength, Tensor? attentionMask, Device device)
    {
        if (attentionMask is null && pastLength == 0)
        {
            return null;
        }

        long keys = pastLength + t;
        Tensor causal = ones(t, keys, dtype: ScalarType.Bool, device: device).tril(pastLength);
        if (attentionMask is null)
        {
            return causal;
        }

        if (attentionMask.dim() != 2 || attentionMask.shape[0] != b || attentionMask.shape[1] != keys)
        {
            throw new ArgumentException(
                $"attentionMask must be [batch, past+time] = [{b}, {keys}]; got [{string.Join(", ", attentionMask.shape)}].",
                nameof(attentionMask));
        }

        Tensor keyIsReal = (attentionMask.dtype == ScalarType.Bool ? attentionMask : attentionMask.ne(0)).view(b, 1, 1, keys);
        Tensor diagonal = causal.logical_and(ones(t, keys, dtype: ScalarType.Bool, device: device).tril(pastLength - 1).logical_not());
        return causal.logical_and(keyIsReal).logical_or(diagonal);
    }
}
