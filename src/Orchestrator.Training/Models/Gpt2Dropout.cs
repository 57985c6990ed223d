using static TorchSharp.torch;

namespace Orchestrator.Training.Models;

/// <summary>
/// The dropout a base model applies in training mode, shared by its dropout sites (GPT-2: embedding, attention and
/// residual; Llama: attention). The rate starts at the checkpoint's (<see cref="Gpt2Config.Dropout"/>); a cell's
/// <c>training.base_dropout</c> sets it for its run (<see cref="CausalLm.Dropout"/>). A PEFT method's own dropout is
/// separate and unaffected.
/// <para>
/// Masks are drawn from <see cref="Generator"/> when a trainer sets one (seeded from the cell), else from torch's global
/// generator. The global generator is shared by every thread of the process, so two cells training at once in two slots
/// would take each other's draws: a trainer always sets the cell's own.
/// </para>
/// </summary>
public sealed class Gpt2Dropout(double rate)
{
    private double _rate = Check(rate);

    /// <summary>The rate in [0, 1).</summary>
    public double Rate
    {
        get => _rate;
        set => _rate = Check(value);
    }

    /// <summary>Where masks are drawn from in training mode; null: torch's global generator.</summary>
    public Generator? Generator { get; set; }

    /// <summary>
    /// x with each element zeroed with probability <see cref="Rate"/> and the rest scaled by 1/(1−rate) when
    /// <paramref name="training"/>, else x (an alias). With the global generator this is torch's own CPU dropout, draw for
    /// draw and bit for bit; the cell's generator draws the same way.
    /// </summary>
    public Tensor Apply(Tensor x, bool training)
    {
        if (!training || _rate <= 0) return x.alias();
        if (Generator is null) return nn.functional.dropout(x, _rate, true);
        using var noise = empty_like(x).bernoulli_(1 - _rate, Generator);
        noise.div_(1 - _rate);
        return x * noise;
    }

    /// <summary>
    /// softmax(q·kᵀ/√d + mask)·v with this dropout on the attention weights in training mode. <paramref name="mask"/>: null
    /// for causal attention (aligned top-left, as scaled_dot_product_attention's is_causal), else boolean (true = may
    /// attend). Without dropout (or with the global generator) this is torch's scaled_dot_product_attention; with the cell's
    /// generator the weights are computed explicitly so the masks come from it.
    /// </summary>
    public Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? mask, bool training)
    {
        double p = training ? _rate : 0.0;
        if (p <= 0 || Generator is null)
        {
            return mask is null
                ? nn.functional.scaled_dot_product_attention(q, k, v, p: p, is_casual: true)
                : nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask, p: p);
        }

        using var scope = NewDisposeScope();
        long queries = q.shape[^2], keys = k.shape[^2];
        Tensor scores = matmul(q, k.transpose(-2, -1)) * (1.0 / Math.Sqrt(q.shape[^1]));
        Tensor allowed = mask ?? ones(queries, keys, dtype: ScalarType.Bool, device: q.device).tril();
        Tensor weights = nn.functional.softmax(scores.masked_fill(allowed.logical_not(), double.NegativeInfinity), -1);
        return matmul(Apply(weights, true), v).MoveToOuterDisposeScope();
    }

    private static double Check(double rate) =>
        rate >= 0 && rate < 1 ? rate : throw new ArgumentOutOfRangeException(nameof(rate), rate, "a dropout rate must be in [0, 1)");
}
