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

    /// <summary>The configuration as written to provenance (the family's own config record).</summary>
    public abstract object Description { get; }

    /// <summary>
    /// Token ids [B,T] → final hidden states [B,T,C] after the last norm. <paramref name="positionIds"/> [B,T] or [1,T]
    /// (default P … P+T−1 with P the past length); <paramref name="attentionMask"/> [B, P+T] nonzero for real tokens;
    /// <paramref name="past"/> one cache entry per layer; <paramref name="hooks"/> a method's extension points (virtual
    /// tokens in front on a pass without past: positions and mask then describe the caller's T tokens only and the result
    /// covers only them); <paramref name="presents"/> receives past (or virtual) + current keys/values per layer.
    /// </summary>
    public abstract Tensor Hidden(
        Tensor inputIds,
        Tensor? positionIds = null,
        Tensor? attentionMask = null,
        IReadOnlyList<LayerKeyValue>? past = null,
        Gpt2Hooks? hooks = null,
        List<LayerKeyValue>? presents = null);

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
