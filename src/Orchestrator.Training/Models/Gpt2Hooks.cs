using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Models;

/// <summary>The projections of a block: GPT-2's four (c_attn fused) and Llama's seven (o_proj and down_proj share GPT-2's sites).</summary>
public enum Gpt2Projection
{
    /// <summary><c>attn.c_attn</c>: Width → 3·Width, output columns [q | k | v].</summary>
    AttentionQkv,

    /// <summary><c>attn.c_proj</c>: Width → Width (GPT-2); <c>self_attn.o_proj</c>: Heads·HeadDim → Width (Llama).</summary>
    AttentionOutput,

    /// <summary><c>mlp.c_fc</c>: Width → 4·Width.</summary>
    MlpIn,

    /// <summary><c>mlp.c_proj</c>: 4·Width → Width (GPT-2); <c>mlp.down_proj</c>: InnerWidth → Width (Llama).</summary>
    MlpOut,

    /// <summary>Llama <c>self_attn.q_proj</c>: Width → Heads·HeadDim.</summary>
    Query,

    /// <summary>Llama <c>self_attn.k_proj</c>: Width → KeyValueHeads·HeadDim.</summary>
    Key,

    /// <summary>Llama <c>self_attn.v_proj</c>: Width → KeyValueHeads·HeadDim.</summary>
    Value,

    /// <summary>Llama <c>mlp.gate_proj</c>: Width → InnerWidth.</summary>
    MlpGate,

    /// <summary>Llama <c>mlp.up_proj</c>: Width → InnerWidth.</summary>
    MlpUp,
}

/// <summary>The two residual sub-layers of a pre-norm block (either family).</summary>
public enum Gpt2Sublayer
{
    Attention,
    Mlp,
}

/// <summary>
/// Extension points of one forward pass of a <see cref="CausalLm"/> of either family (<see cref="Gpt2Model"/>,
/// <see cref="LlamaModel"/>), passed per call (the model keeps no method state, so a
/// frozen base can be shared). Every default leaves the model unchanged; a PEFT method overrides what it needs. All tensors
/// returned here are used inside the model's DisposeScope of that forward pass.
/// <para>
/// Virtual tokens: on a forward without past keys/values, <see cref="Prefix"/> (per-layer keys/values) or
/// <see cref="Prompt"/> (embeddings) put <see cref="VirtualTokens"/> positions in front of the caller's tokens. The caller's
/// position ids and attention mask then describe its own T tokens only (the model offsets the positions by the number of
/// virtual tokens and marks the virtual positions as real), and the returned hidden states/logits cover only the caller's T
/// tokens. A later forward with a cache (past of length V + earlier tokens) gets no virtual tokens again; its position ids, if
/// given, are absolute.
/// </para>
/// </summary>
public abstract class Gpt2Hooks
{
    /// <summary>Number of virtual positions that <see cref="Prefix"/> or <see cref="Prompt"/> put in front (0: none).</summary>
    public virtual int VirtualTokens => 0;

    /// <summary>
    /// Per-layer keys/values [B, Heads, P, HeadDim] prepended on a forward without past (prefix-tuning, P-tuning v2); real
    /// tokens start at position P. Null: none.
    /// </summary>
    public virtual IReadOnlyList<LayerKeyValue>? Prefix(long batchSize, bool training) => null;

    /// <summary>
    /// Embeddings [B or 1, P, Width] placed before the token embeddings on a forward without past (prompt tuning, P-tuning);
    /// they get positions 0..P-1 and real tokens start at P. Null: none.
    /// </summary>
    public virtual Tensor? Prompt(long batchSize, bool training) => null;

    /// <summary>Computes projection <paramref name="site"/> of block <paramref name="layer"/>. Default: <c>linear(input)</c>.</summary>
    public virtual Tensor Project(int layer, Gpt2Projection site, Linear linear, Tensor input, bool training) => linear.forward(input);

    /// <summary>
    /// The output of a sub-layer (attention after c_proj and dropout, or the MLP) before it is added to the residual stream;
    /// <paramref name="input"/> is the sub-layer's input (after its LayerNorm). Default: <paramref name="output"/>.
    /// </summary>
    public virtual Tensor Sublayer(int layer, Gpt2Sublayer sublayer, Module block, Tensor input, Tensor output, bool training) => output;

    /// <summary>
    /// Llama family only: the attention's per-head output [B, Heads, T, HeadDim] before o_proj, given the rotated queries
    /// [B, Heads, T, HeadDim] of the same pass (LLaMA-Adapter adds its gated attention over the adaption prompts here, so
    /// that o_proj projects it). Default: <paramref name="heads"/>.
    /// </summary>
    public virtual Tensor AttentionHeads(int layer, LlamaAttention attention, Tensor query, Tensor heads, bool training) => heads;

    /// <summary>The output of block <paramref name="layer"/> (the residual stream after it). Default: <paramref name="hidden"/>.</summary>
    public virtual Tensor Block(int layer, Tensor hidden, bool training) => hidden;

    /// <summary>
    /// The output layer: final hidden states [.., Width] (after ln_f) → logits [.., V]. <paramref name="tiedWeight"/> is the
    /// token embedding matrix [V, Width]. Default: the tied projection <c>hidden · tiedWeightᵀ</c>.
    /// </summary>
    public virtual Tensor Output(Tensor hidden, Tensor tiedWeight, bool training) => nn.functional.linear(hidden, tiedWeight);
}

/// <summary>
/// Hooks whose projections treat every row (sequence) of the batch on its own: an optional change of the projection's input
/// before the shared <c>linear</c> and of its output after it (LoRA adds a low-rank update, IA3 rescales). Because the
/// base matmul itself is untouched, the packed trainer can run one <c>linear</c> over the rows of many trials and apply each
/// trial's change to its own rows (<see cref="Orchestrator.Training.Packing.PackedHooks"/>); alone, <see cref="Project"/>
/// composes the same three steps, so both paths compute the same function.
/// </summary>
public abstract class Gpt2RowwiseHooks : Gpt2Hooks
{
    /// <summary>True when <see cref="AdjustInput"/> changes the input of <paramref name="site"/> in block <paramref name="layer"/>.</summary>
    public virtual bool AdjustsInput(int layer, Gpt2Projection site) => false;

    /// <summary>True when <see cref="AdjustOutput"/> changes the output of <paramref name="site"/> in block <paramref name="layer"/>.</summary>
    public virtual bool AdjustsOutput(int layer, Gpt2Projection site) => false;

    /// <summary>The input the shared linear sees, from this method's rows of the projection's input.</summary>
    public virtual Tensor AdjustInput(int layer, Gpt2Projection site, Tensor input, bool training) => input;

    /// <summary>
    /// The projection's result for this method's rows, from their original <paramref name="input"/> and the shared linear's
    /// <paramref name="output"/>.
    /// </summary>
    public virtual Tensor AdjustOutput(int layer, Gpt2Projection site, Tensor input, Tensor output, bool training) => output;

    public sealed override Tensor Project(int layer, Gpt2Projection site, Linear linear, Tensor input, bool training)
    {
        Tensor x = AdjustsInput(layer, site) ? AdjustInput(layer, site, input, training) : input;
        Tensor output = linear.forward(x);
        if (!ReferenceEquals(x, input)) x.Dispose();
        if (!AdjustsOutput(layer, site)) return output;
        using (output)
        {
            return AdjustOutput(layer, site, input, output, training);
        }
    }
}
