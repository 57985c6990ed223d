using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>
/// A causal language model of either family (<see cref="Gpt2Model"/>, <see cref="LlamaModel"/>) as the trainer, the decoders
/// and the PEFT methods see it: token ids → hidden states → logits, with the per-call extension points of
/// <see cref="Gpt2Hooks"/> (both families call the same hooks at the same places of their pre-norm blocks), a KV cache, and
/// the <see cref="Shape"/> that methods size their tensors from.
/// </summary>
public abstract class CausalLm : Module<Tensor, Tensor>
{
    protected CausalLm(string name) : base(name)
    {
    }

    /// <summary>Sizes and family.</summary>
    public abstract ModelShape Shape { get; }

    /// <summary>The token embedding matrix [V, C].</summary>
    public abstract Parameter TokenEmbeddings { get; }

    /// <summary>The output projection [V, C] (the token embeddings when tied).</summary>
    public abstract Parameter OutputWeight { get; }

    /// <summary>The device of the parameters.</summary>
    public Device Device => TokenEmbeddings.device;

    /// <summary>
    /// The rate of the base's own dropout in training mode (GPT-2: embedding, attention and residual; Llama: attention), the
    /// checkpoint's until a trainer sets a cell's <c>training.base_dropout</c>.
    /// </summary>
    public abstract double Dropout { get; set; }

    /// <summary>
    /// Where the base's dropout masks come from in training mode; null: torch's global generator. A trainer sets one seeded
    /// from the cell, so cells training at once in one process do not take each other's draws.
    /// </summary>
    public abstract TorchSharp.torch.Generator? DropoutGenerator { get; set; }

    /// <summary>The configuration as written to provenance (the family's own config record).</summary>
    public abstract object Description { get; }

    /// <summary>
    /// Token ids [B,T] → final hidden states [B,T,C] after the last norm. <paramref name="positionIds"/> [B,T] or [1,T]
    /// (default P … P+T−1 with P the past length); <paramref name="attentionMask"/> [B, P+T] nonzero for real tokens, padded
    /// keys never attended to (a padded query attends only to itself so that its row stays finite); <paramref name="past"/>
    /// one cache entry per layer; <paramref name="hooks"/> a method's extension points: on a pass without past they may add
    /// V virtual tokens in front (a prefix of V cached keys/values per layer, [B, KeyValueHeads, V, HeadDim], or a prompt
    /// [1 or B, V, C] with positions 0 … V−1); positions then count from the first real token (the model adds V), the mask
    /// may be [B, T] (extended with V ones) or [B, V+T], and the result covers only the T real tokens.
    /// <paramref name="presents"/> receives, per layer, everything that layer attended to (past or virtual + current
    /// keys/values): the KV cache to pass as <paramref name="past"/> next time, moved to the caller's DisposeScope.
    /// </summary>
    public Tensor Hidden(
        Tensor inputIds,
        Tensor? positionIds = null,
        Tensor? attentionMask = null,
        IReadOnlyList<LayerKeyValue>? past = null,
        Gpt2Hooks? hooks = null,
        List<LayerKeyValue>? presents = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ModelShape shape = Shape;
        if (inputIds.dim() != 2)
        {
            throw new ArgumentException($"inputIds must be [batch, time]; got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        }

        if (past is not null && past.Count != shape.Layers)
        {
            throw new ArgumentException($"past must have one entry per layer ({shape.Layers}); got {past.Count}.", nameof(past));
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
                CheckPrefix(prefix, shape);
                past = prefix;
                pastLength = virtualTokens = prefix[0].Length;
            }
            else if (prompt is not null)
            {
                if (prompt.dim() != 3 || prompt.shape[2] != shape.Width || (prompt.shape[0] != 1 && prompt.shape[0] != b))
                {
                    throw new InvalidOperationException(
                        $"The hooks' prompt must be [1 or {b}, P, {shape.Width}]; got [{string.Join(", ", prompt.shape)}].");
                }

                virtualTokens = prompt.shape[1];
                if (prompt.shape[0] != b)
                {
                    prompt = prompt.expand(b, virtualTokens, shape.Width);
                }
            }
        }

        long promptLength = prompt is null ? 0 : virtualTokens;
        long length = promptLength + t;
        if (positionIds is null && pastLength + length > shape.Positions)
        {
            throw new ArgumentException(
                $"Sequence of {t} tokens (+{pastLength + promptLength} past or virtual) exceeds the model's {shape.Positions} positions.",
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

        if (attentionMask is not null && virtualTokens > 0 && attentionMask.dim() == 2 && attentionMask.shape[1] == t)
        {
            Tensor real = attentionMask.dtype == ScalarType.Bool ? attentionMask : attentionMask.ne(0);
            attentionMask = cat([ones(b, virtualTokens, dtype: ScalarType.Bool, device: inputIds.device), real], 1);
        }

        Tensor? mask = BuildMask(b, length, pastLength, attentionMask, inputIds.device);
        int firstPresent = presents?.Count ?? 0;
        Tensor output = Body(inputIds, prompt, positions, positionIds is not null, mask, past, hooks, presents);
        if (presents is not null)
        {
            for (int i = firstPresent; i < presents.Count; i++)
            {
                presents[i].Key.MoveToOuterDisposeScope();
                presents[i].Value.MoveToOuterDisposeScope();
            }
        }

        if (promptLength > 0)
        {
            output = output.narrow(1, promptLength, t);
        }

        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The family's own part of <see cref="Hidden"/>: embeddings of <paramref name="inputIds"/> after the (already batch-sized)
    /// <paramref name="prompt"/>, the blocks under <paramref name="mask"/> with <paramref name="past"/> (the hooks' prefix when
    /// they gave one), and the last norm; [B, P+T, C] with P the prompt's length. <paramref name="positions"/> cover the prompt
    /// and the tokens; <paramref name="explicitPositions"/> says the caller chose them.
    /// </summary>
    protected abstract Tensor Body(
        Tensor inputIds,
        Tensor? prompt,
        Tensor positions,
        bool explicitPositions,
        Tensor? mask,
        IReadOnlyList<LayerKeyValue>? past,
        Gpt2Hooks? hooks,
        List<LayerKeyValue>? presents);

    /// <summary>Embeddings [B,T,C] with the prompt [B,P,C] in front when there is one.</summary>
    protected static Tensor WithPrompt(Tensor? prompt, Tensor embeddings) =>
        prompt is null ? embeddings : cat([prompt, embeddings], 1);

    private static void CheckPrefix(IReadOnlyList<LayerKeyValue> prefix, ModelShape shape)
    {
        if (prefix.Count != shape.Layers)
        {
            throw new InvalidOperationException($"The hooks' prefix has {prefix.Count} layers; the model has {shape.Layers}.");
        }

        Tensor key = prefix[0].Key;
        if (key.dim() != 4 || key.shape[1] != shape.KeyValueHeads || key.shape[3] != shape.HeadDim)
        {
            throw new InvalidOperationException(
                $"The hooks' prefix must be [B, {shape.KeyValueHeads}, P, {shape.HeadDim}] (key/value heads); got [{string.Join(", ", key.shape)}].");
        }
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

    /// <summary>Final hidden states [.., C] → logits [.., V] through <see cref="OutputWeight"/>, or the hooks' output layer.</summary>
    public Tensor Logits(Tensor hidden, Gpt2Hooks? hooks = null) =>
        hooks is null ? functional.linear(hidden, OutputWeight) : hooks.Output(hidden, OutputWeight, training);

    /// <summary>Token ids [B,T] (int64) → logits [B,T,V].</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <summary>Token ids [B,T] → logits [B,T,V]; see <see cref="Hidden"/> for the optional arguments.</summary>
    public Tensor Forward(
        Tensor inputIds,
        Tensor? positionIds = null,
        Tensor? attentionMask = null,
        IReadOnlyList<LayerKeyValue>? past = null,
        Gpt2Hooks? hooks = null,
        List<LayerKeyValue>? presents = null)
    {
        using var hidden = Hidden(inputIds, positionIds, attentionMask, past, hooks, presents);
        return Logits(hidden, hooks);
    }
}
